{#- Journey completion and success score (v1) per journey and ISO week (Monday, UTC) the episodes started. -#}
{{ journey_success_kpis('week_start', week_start('started_day')) }}

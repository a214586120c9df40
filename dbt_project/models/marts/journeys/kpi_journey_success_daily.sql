{#- Journey completion and success score (v1) per journey and UTC day the episodes started. -#}
{{ journey_success_kpis('day', 'started_day') }}

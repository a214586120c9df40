{#- Funnel entries, steps reached and drop-off per funnel, step and ISO week (Monday, UTC) the attempts started. -#}
{{ funnel_kpis('week_start', week_start('started_day')) }}

{#- Funnel entries, steps reached and drop-off per funnel, step and UTC day the attempts started. -#}
{{ funnel_kpis('day', 'started_day') }}

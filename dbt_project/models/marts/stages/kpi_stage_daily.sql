{#- Stage KPIs per UTC day a stage was entered (see macro stage_kpis). -#}
{{ stage_kpis('cohort_day', 'day') }}

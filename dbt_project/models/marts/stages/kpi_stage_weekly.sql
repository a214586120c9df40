{#- Stage KPIs per ISO week (Monday start, UTC) a stage was entered (see macro stage_kpis). -#}
{{ stage_kpis('cohort_week', 'week_start') }}

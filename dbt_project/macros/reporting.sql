{#- The pipeline run that refreshed the reporting tables (run_id, else the dbt invocation). -#}
{% macro build_run_id() -%}
    cast('{{ dbt.escape_single_quotes((pipeline_value("run_id") or invocation_id) | string) }}' as {{ dbt.type_string() }})
{%- endmacro %}

{#- Monday of the ISO week of a date, as a date. -#}
{% macro week_start(date_expression) -%}
    {{ return(adapter.dispatch('week_start', 'journeyflow')(date_expression)) }}
{%- endmacro %}

{% macro default__week_start(date_expression) -%}
    cast({{ dbt.date_trunc('week', date_expression) }} as date)
{%- endmacro %}

{% macro postgres__week_start(date_expression) -%}
    {#- date arithmetic only: no detour through timestamps and the session time zone -#}
    ({{ date_expression }} - (cast(extract(isodow from {{ date_expression }}) as integer) - 1))
{%- endmacro %}

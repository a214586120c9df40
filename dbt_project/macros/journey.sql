{#- Elapsed hours between two timestamps, as a decimal number. -#}
{% macro hours_between(start_column, end_column) -%}
    {{ return(adapter.dispatch('hours_between', 'journeyflow')(start_column, end_column)) }}
{%- endmacro %}

{% macro default__hours_between(start_column, end_column) -%}
    cast({{ dbt.datediff(start_column, end_column, 'second') }} as {{ dbt.type_numeric() }}) / 3600
{%- endmacro %}

{% macro postgres__hours_between(start_column, end_column) -%}
    {#- exact elapsed time, unaffected by the session time zone and DST -#}
    cast(extract(epoch from ({{ end_column }} - {{ start_column }})) / 3600 as numeric)
{%- endmacro %}

{#- Calendar day (UTC) of a timestamp. -#}
{% macro utc_date(column_name) -%}
    {{ return(adapter.dispatch('utc_date', 'journeyflow')(column_name)) }}
{%- endmacro %}

{% macro default__utc_date(column_name) -%}
    cast({{ dbt.date_trunc('day', column_name) }} as date)
{%- endmacro %}

{% macro postgres__utc_date(column_name) -%}
    cast(timezone('UTC', {{ column_name }}) as date)
{%- endmacro %}

{#- `columns`, each qualified by `alias`, comma-separated. -#}
{% macro qualified_columns(columns, alias) -%}
    {%- for column in columns -%}
        {{ alias }}.{{ column }}{% if not loop.last %}, {% endif %}
    {%- endfor -%}
{%- endmacro %}

{#- The start of a date in UTC, as a timestamp with time zone. -#}
{% macro utc_midnight(date_expression) -%}
    {{ return(adapter.dispatch('utc_midnight', 'journeyflow')(date_expression)) }}
{%- endmacro %}

{% macro default__utc_midnight(date_expression) -%}
    cast({{ date_expression }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro postgres__utc_midnight(date_expression) -%}
    timezone('UTC', cast({{ date_expression }} as timestamp))
{%- endmacro %}

{#- Median of an expression, as an aggregate. -#}
{% macro median(expression) -%}
    {{ return(adapter.dispatch('median', 'journeyflow')(expression)) }}
{%- endmacro %}

{% macro default__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{#- A percentile (0-1) of an expression, as an aggregate. -#}
{% macro percentile(fraction, expression) -%}
    {{ return(adapter.dispatch('percentile', 'journeyflow')(fraction, expression)) }}
{%- endmacro %}

{% macro default__percentile(fraction, expression) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{%- endmacro %}

{#- Timestamp of the dbt invocation, as a SQL literal (same value for every model in a run). -#}
{% macro build_timestamp() -%}
    {{ return(adapter.dispatch('build_timestamp', 'journeyflow')()) }}
{%- endmacro %}

{% macro default__build_timestamp() -%}
    {%- if run_started_at is none -%}{{ return(dbt.current_timestamp()) }}{%- endif -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro postgres__build_timestamp() -%}
    {%- if run_started_at is none -%}{{ return(dbt.current_timestamp()) }}{%- endif -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00' as timestamptz)
{%- endmacro %}

{#-
    A value the pipeline passes for one run: var(name) when given (--vars, unit tests), else
    the environment variable JOURNEY_<NAME>, read only while executing: a value that changes
    every run then never makes dbt re-parse the project (as --vars would). None when unset.
-#}
{% macro pipeline_value(name) -%}
    {%- set value = var(name, none) -%}
    {%- if value is none and execute -%}
        {%- set value = env_var('JOURNEY_' ~ (name | upper), '') or none -%}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{#-
    The moment data logic measures "recent" and "stalled" against: the pipeline passes its
    data interval's end as `as_of` (see pipeline_value), so rebuilding an interval later gives
    the same tables. Without it (ad-hoc runs) it is the build's start.
-#}
{% macro as_of_timestamp() -%}
    {%- set as_of = pipeline_value('as_of') -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        {{ build_timestamp() }}
    {%- endif -%}
{%- endmacro %}

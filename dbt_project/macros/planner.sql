{#-
    Pre-hook for models that only join big derived relations on equality (dim_customers):
    PostgreSQL estimates a relation filtered on a window rank (row_number() ... = 1) at a
    fraction of its real size and then plans nested loops between two of them, e.g. the
    e-mail status join, which run for hours at 10 M touchpoints. Hash joins are right for
    every join there; `set local` limits this to the model's own transaction.
-#}
{% macro prefer_hash_joins() -%}
    {{ return(adapter.dispatch('prefer_hash_joins', 'journeyflow')()) }}
{%- endmacro %}

{% macro default__prefer_hash_joins() %}{% endmacro %}

{% macro postgres__prefer_hash_joins() -%}
    set local enable_nestloop = off
{%- endmacro %}


{#- The caller's statement with plain index scans off (bitmap index scans stay on), then the
    setting back to its default. The planner estimates `= any(array(...))` at ten elements,
    so it fetches the listed profiles' rows with a plain index scan, one heap visit per row,
    however many profiles are listed; a bitmap scan visits each page once. Deleting 94,712
    listed profiles' rows from int_customer_weeks (1.4 M of 4.3 M rows before the tail
    filter) took 3.6 s by index scan, 1.1 s by bitmap scan; the delete of fct_funnel_attempts
    2.6 s by index scan. -#}
{% macro listed_rows_by_bitmap() -%}
    {{ return(adapter.dispatch('listed_rows_by_bitmap', 'journeyflow')(caller())) }}
{%- endmacro %}

{% macro default__listed_rows_by_bitmap(statement) %}{{ statement }}{% endmacro %}

{% macro postgres__listed_rows_by_bitmap(statement) -%}
    set local enable_indexscan = off;
    {{ statement }};
    reset enable_indexscan
{%- endmacro %}

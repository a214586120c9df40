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

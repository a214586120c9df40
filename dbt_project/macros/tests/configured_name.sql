{#- Passes when every value of the column names a journey (or funnel) declared in var(kind). -#}
{% test configured_name(model, column_name, kind) %}
{%- if kind == 'journeys' -%}
    {%- set names = journey_definitions() | map(attribute='name') | list -%}
{%- elif kind == 'funnels' -%}
    {%- set names = funnel_definitions() | map(attribute='name') | list -%}
{%- else -%}
    {{ exceptions.raise_compiler_error("configured_name: kind must be journeys or funnels, got " ~ kind) }}
{%- endif %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} not in ('{{ names | join("', '") }}')

{% endtest %}

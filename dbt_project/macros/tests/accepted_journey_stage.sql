{#- Passes when every non-null value is a stage of var('journey_stage_rules'), lapsed or one of extra_values. -#}
{% test accepted_journey_stage(model, column_name, extra_values=[]) %}

{%- set stages = journey_stages() + extra_values %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
    and {{ column_name }} not in {{ stage_list_sql(stages) }}

{% endtest %}

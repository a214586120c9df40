{#-
    Journey stage rules from var('journey_stage_rules') (see dbt_project.yml): validation and
    the SQL fragments generated from them. Adding or changing a rule needs no SQL edit.
-#}

{#- Name of the churn-risk stage, entered after a period without activity. -#}
{% macro lapsed_stage() -%}
    {{ return('lapsed') }}
{%- endmacro %}

{% macro _stage_rule_error(where, message) -%}
    {{ exceptions.raise_compiler_error("var('journey_stage_rules') " ~ where ~ ": " ~ message) }}
{%- endmacro %}

{% macro _check_fields(mapping, allowed, where) -%}
    {%- if mapping is not mapping -%}
        {{ _stage_rule_error(where, "expected a mapping, got " ~ mapping) }}
    {%- endif -%}
    {%- for key in mapping -%}
        {%- if key not in allowed -%}
            {{ _stage_rule_error(where, "unknown field '" ~ key ~ "' (allowed: " ~ allowed | join(', ') ~ ")") }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{% macro _positive_integer(value, where, field) -%}
    {%- if value is not number or value != value | int or value < 1 -%}
        {{ _stage_rule_error(where, field ~ " must be a whole number >= 1, got " ~ value) }}
    {%- endif -%}
    {{ return(value | int) }}
{%- endmacro %}

{% macro _type_list(value, where, field) -%}
    {%- if value is string or value is not iterable or value | length == 0 -%}
        {{ _stage_rule_error(where, field ~ " must be a non-empty list of touchpoint types") }}
    {%- endif -%}
    {%- for item in value -%}
        {%- if item is not string or not modules.re.match('^[a-z0-9_]+$', item) -%}
            {{ _stage_rule_error(where, field ~ " has an invalid touchpoint type " ~ item) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(value | list) }}
{%- endmacro %}

{#- One enter_when condition, validated and with its defaults filled in. -#}
{% macro _stage_condition(condition, where) -%}
    {{ _check_fields(condition, ['touchpoints', 'except', 'at_least', 'within_days', 'within_days_of_first'], where) }}
    {%- if 'touchpoints' not in condition -%}
        {{ _stage_rule_error(where, "touchpoints is required (a list of types, or any)") }}
    {%- endif -%}
    {%- set any_type = condition.touchpoints == 'any' -%}
    {%- if 'except' in condition and not any_type -%}
        {{ _stage_rule_error(where, "except is only allowed with touchpoints: any") }}
    {%- endif -%}
    {%- if 'within_days' in condition and 'within_days_of_first' in condition -%}
        {{ _stage_rule_error(where, "use within_days or within_days_of_first, not both") }}
    {%- endif -%}
    {{ return({
        'types': none if any_type else _type_list(condition.touchpoints, where, 'touchpoints'),
        'except': _type_list(condition['except'], where, 'except') if 'except' in condition else [],
        'at_least': _positive_integer(condition.get('at_least', 1), where, 'at_least'),
        'within_days': _positive_integer(condition.within_days, where, 'within_days')
            if 'within_days' in condition else none,
        'within_days_of_first': _positive_integer(condition.within_days_of_first, where, 'within_days_of_first')
            if 'within_days_of_first' in condition else none,
    }) }}
{%- endmacro %}

{#-
    The validated rules: {stages: [{name, order, conditions}], lapsed: {after_inactive_days,
    ignore_touchpoints, order}, reentry}. Any unknown key or bad value fails the compile with
    a message naming the rule.
-#}
{% macro journey_stage_config() -%}
    {%- set rules = var('journey_stage_rules', none) -%}
    {%- if rules is none -%}{{ _stage_rule_error('', 'is not set') }}{%- endif -%}
    {{ _check_fields(rules, ['stages', 'lapsed', 'reentry'], '') }}
    {%- if rules.stages is not defined or rules.stages is string or rules.stages | length == 0 -%}
        {{ _stage_rule_error('stages', 'must be a non-empty list') }}
    {%- endif -%}
    {%- set stages = [] -%}
    {%- for stage in rules.stages -%}
        {%- set where = 'stage ' ~ loop.index -%}
        {{ _check_fields(stage, ['name', 'enter_when', 'description'], where) }}
        {%- if stage.name is not string or not modules.re.match('^[a-z][a-z0-9_]*$', stage.name) -%}
            {{ _stage_rule_error(where, "name must be a lower-case identifier, got " ~ stage.name) }}
        {%- endif -%}
        {%- set where = "stage '" ~ stage.name ~ "'" -%}
        {%- if stage.name == lapsed_stage() or stage.name in stages | map(attribute='name') | list -%}
            {{ _stage_rule_error(where, "name is used twice (lapsed is reserved for the lapsed rule)") }}
        {%- endif -%}
        {%- if stage.enter_when is not defined or stage.enter_when is mapping or stage.enter_when is string or stage.enter_when | length == 0 -%}
            {{ _stage_rule_error(where, "enter_when must be a non-empty list of conditions") }}
        {%- endif -%}
        {%- set conditions = [] -%}
        {%- for condition in stage.enter_when -%}
            {%- do conditions.append(_stage_condition(condition, where ~ ', condition ' ~ loop.index)) -%}
        {%- endfor -%}
        {%- do stages.append({'name': stage.name, 'order': loop.index, 'conditions': conditions}) -%}
    {%- endfor -%}
    {%- set lapsed = rules.get('lapsed') -%}
    {%- if lapsed is none -%}{{ _stage_rule_error('lapsed', 'is required') }}{%- endif -%}
    {{ _check_fields(lapsed, ['after_inactive_days', 'ignore_touchpoints'], 'lapsed') }}
    {%- set reentry = rules.get('reentry', 'restart') -%}
    {%- if reentry not in ['restart', 'resume'] -%}
        {{ _stage_rule_error('reentry', "must be restart or resume, got " ~ reentry) }}
    {%- endif -%}
    {{ return({
        'stages': stages,
        'lapsed': {
            'after_inactive_days': _positive_integer(lapsed.get('after_inactive_days'), 'lapsed', 'after_inactive_days'),
            'ignore_touchpoints': _type_list(lapsed.ignore_touchpoints, 'lapsed', 'ignore_touchpoints')
                if 'ignore_touchpoints' in lapsed else [],
            'order': stages | length + 1,
        },
        'reentry': reentry,
    }) }}
{%- endmacro %}

{#- All stage names: the funnel in order, then lapsed. -#}
{% macro journey_stages() -%}
    {{ return(journey_funnel_stages() + [lapsed_stage()]) }}
{%- endmacro %}

{#- The funnel stages in order (without lapsed). -#}
{% macro journey_funnel_stages() -%}
    {{ return(journey_stage_config().stages | map(attribute='name') | list) }}
{%- endmacro %}

{#- SQL list literal of stage names, e.g. ('awareness', 'decision'). -#}
{% macro stage_list_sql(stages) -%}
    ({%- for stage in stages -%}'{{ stage }}'{{ ', ' if not loop.last }}{%- endfor -%})
{%- endmacro %}

{#- Stage name of a stage_order expression. -#}
{% macro stage_name_sql(order_expression) -%}
    case {{ order_expression }}
        {%- for stage in journey_stages() %}
        when {{ loop.index }} then '{{ stage }}'
        {%- endfor %}
    end
{%- endmacro %}

{#- Position in the funnel of a stage name expression; lapsed ranks below every stage. -#}
{% macro stage_rank_sql(stage_expression) -%}
    case {{ stage_expression }}
        when '{{ lapsed_stage() }}' then 0
        {%- for stage in journey_funnel_stages() %}
        when '{{ stage }}' then {{ loop.index }}
        {%- endfor %}
    end
{%- endmacro %}

{#- A SELECT of every stage with its stage_order (lapsed last): the grid of reporting tables. -#}
{% macro journey_stage_rows() -%}
    {%- for stage in journey_stages() %}
    select '{{ stage }}' as stage, {{ loop.index }} as stage_order
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- True when a touchpoint type counts for a condition. -#}
{% macro stage_condition_matches(condition, type_column) -%}
    {%- if condition.types is not none -%}
        {{ type_column }} in {{ stage_list_sql(condition.types) }}
    {%- elif condition.except -%}
        {{ type_column }} not in {{ stage_list_sql(condition.except) }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- True when a touchpoint is customer activity (resets the lapse clock). -#}
{% macro is_customer_activity(type_column) -%}
    {%- set ignored = journey_stage_config().lapsed.ignore_touchpoints -%}
    {%- if ignored -%}{{ type_column }} not in {{ stage_list_sql(ignored) }}{%- else -%}1 = 1{%- endif -%}
{%- endmacro %}

{#- The CTE (or column) name of a stage's condition by its position (from 1), e.g.
    consideration_condition_2. -#}
{% macro stage_condition_name(stage, position) -%}
    {{ return(stage.name ~ '_condition_' ~ position) }}
{%- endmacro %}

{#-
    When a condition of at_least >= 2 touchpoints first holds, per profile and scope, from a
    relation of touchpoints with profile_id, scope_key, touchpoint_id, touchpoint_type,
    occurred_at. (A one-touchpoint condition first holds at its first match: see
    fct_customer_stage_history's first_matches.)
-#}
{% macro stage_condition_entries(condition, relation) -%}
    {%- set n = condition.at_least -%}
    select
        profile_id,
        scope_key,
        min(occurred_at) as qualified_at
    from (
        select
            profile_id,
            scope_key,
            occurred_at,
            row_number() over (
                partition by profile_id, scope_key order by occurred_at, touchpoint_id
            ) as occurrence,
            lag(occurred_at, {{ n - 1 }}) over (
                partition by profile_id, scope_key order by occurred_at, touchpoint_id
            ) as window_start_at,
            min(occurred_at) over (partition by profile_id, scope_key) as first_at
        from {{ relation }}
        where {{ stage_condition_matches(condition, 'touchpoint_type') }}
    ) as matches
    where occurrence >= {{ n }}
    {%- if condition.within_days is not none %}
        and occurred_at <= {{ dbt.dateadd('day', condition.within_days, 'window_start_at') }}
    {%- elif condition.within_days_of_first is not none %}
        and occurrence = {{ n }}
        and occurred_at <= {{ dbt.dateadd('day', condition.within_days_of_first, 'first_at') }}
    {%- endif %}
    group by profile_id, scope_key
{%- endmacro %}

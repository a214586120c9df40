{#-
    Journey stage spells: one row per profile per stay in a stage, built from the rules in
    var('journey_stage_rules') (dbt_project.yml). Funnel stages are entered when one of their
    conditions first holds, never before the previous stage (no time travel), and may be
    skipped. `lapsed` is entered after_inactive_days after the last activity (for the current
    spell: only once that moment is not after var('as_of')); the next activity ends it and the
    profile re-enters the funnel (reentry: restart = from its new touchpoints only, resume =
    at the furthest stage reached before). A spell ends when the next one starts.
    Incremental by profile (macros/profile_rebuild.sql).
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='profile_replace',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['profile_id']}, {'columns': ['rebuilt_at']}],
    post_hook="{{ identity_analyze_sql(this) }}",
) }}
{%- set scope = profile_rebuild_scope() %}

{%- set config = journey_stage_config() -%}
{%- set inactive_days = config.lapsed.after_inactive_days -%}
{%- set lapsed_order = config.lapsed.order -%}

with

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}
    where true {{ profile_rebuild_filter(scope) }}

),

activity_marked as (

    select
        profile_id,
        touchpoint_id,
        touchpoint_type,
        occurred_at,
        {{ is_customer_activity('touchpoint_type') }} as is_activity,
        max(case when {{ is_customer_activity('touchpoint_type') }} then occurred_at end) over (
            partition by profile_id
            order by occurred_at, touchpoint_id
            rows between unbounded preceding and 1 preceding
        ) as previous_activity_at
    from touchpoints

),

comebacks_marked as (

    select
        *,
        case
            when is_activity
                and occurred_at > {{ dbt.dateadd('day', inactive_days, 'previous_activity_at') }}
                then 1
            else 0
        end as is_comeback
    from activity_marked

),

{#- The active period a touchpoint belongs to: the number of comebacks before it. -#}
scoped_touchpoints as (

    select
        profile_id,
        touchpoint_id,
        touchpoint_type,
        occurred_at,
        is_activity,
        previous_activity_at,
        is_comeback,
        {% if config.reentry == 'restart' -%}
        sum(is_comeback) over (
            partition by profile_id
            order by occurred_at, touchpoint_id
            rows between unbounded preceding and current row
        )
        {%- else -%}
        0
        {%- endif %} as scope_key
    from comebacks_marked

),

{#- When each condition one touchpoint satisfies first holds, per profile and scope, and the
    scope's last activity: one pass over the touchpoints. -#}
first_matches as (

    select
        profile_id,
        scope_key,
        {%- for stage in config.stages %}
        {%- for condition in stage.conditions %}
        {%- if condition.at_least == 1 %}
        min(case when {{ stage_condition_matches(condition, 'touchpoint_type') }} then occurred_at end)
            as {{ stage_condition_name(stage, loop.index) }},
        {%- endif %}
        {%- endfor %}
        {%- endfor %}
        max(case when is_activity then occurred_at end) as last_activity_at
    from scoped_touchpoints
    group by profile_id, scope_key

),

{% for stage in config.stages %}
{% for condition in stage.conditions %}
{% if condition.at_least > 1 %}
{{ stage_condition_name(stage, loop.index) }} as (

    {{ stage_condition_entries(condition, 'scoped_touchpoints') }}

),

{% endif %}
{% endfor %}
{% endfor %}

stage_candidates as (

    select profile_id, scope_key, stage_order, min(qualified_at) as candidate_at
    from (
        {%- for stage in config.stages %}
        {%- set stage_loop = loop %}
        {%- for condition in stage.conditions %}
        {%- set name = stage_condition_name(stage, loop.index) %}
        {%- if condition.at_least == 1 %}
        select profile_id, scope_key, {{ stage.order }} as stage_order, {{ name }} as qualified_at
        from first_matches
        where {{ name }} is not null
        {%- else %}
        select profile_id, scope_key, {{ stage.order }} as stage_order, qualified_at
        from {{ name }}
        {%- endif %}
        {% if not (loop.last and stage_loop.last) %}union all{% endif %}
        {%- endfor %}
        {%- endfor %}
    ) as qualified
    group by profile_id, scope_key, stage_order

),

{#- A stage is never entered before the previous stage reached in the same scope. -#}
milestones as (

    select
        profile_id,
        scope_key,
        stage_order,
        max(candidate_at) over (
            partition by profile_id, scope_key
            order by stage_order
            rows between unbounded preceding and current row
        ) as entered_at
    from stage_candidates

),

comebacks as (

    select profile_id, scope_key, occurred_at, previous_activity_at
    from scoped_touchpoints
    where is_comeback = 1

),

{#- Last activity before each lapse: before a comeback, and the latest one if long enough ago. -#}
lapses as (

    select profile_id, previous_activity_at as active_until
    from comebacks

    union all

    select profile_id, max(last_activity_at) as active_until
    from first_matches
    group by profile_id
    having {{ dbt.dateadd('day', inactive_days, 'max(last_activity_at)') }} <= {{ as_of_timestamp() }}

),

{#- Ordered events; event_rank orders ties: comeback, then milestones, then a lapse. -#}
events as (

    select profile_id, scope_key, entered_at as event_at, 1 as event_rank, stage_order, 0 as lapse_step
    from milestones

    union all

    select
        profile_id,
        scope_key,
        occurred_at as event_at,
        0 as event_rank,
        0 as stage_order,
        -1 as lapse_step
    from comebacks

    union all

    select
        profile_id,
        -1 as scope_key,
        {{ dbt.dateadd('day', inactive_days, 'active_until') }} as event_at,
        2 as event_rank,
        0 as stage_order,
        1 as lapse_step
    from lapses

),

{#- The state after each event: lapsed, else the furthest stage reached in the scope. -#}
states as (

    select
        profile_id,
        event_at,
        event_rank,
        scope_key,
        stage_order,
        case
            when sum(lapse_step) over (
                partition by profile_id
                order by event_at, event_rank, scope_key, stage_order
                rows between unbounded preceding and current row
            ) > 0
                then {{ lapsed_order }}
            else max(case when event_rank = 1 then stage_order end) over (
                partition by profile_id, scope_key
                order by event_at, event_rank, stage_order
                rows between unbounded preceding and current row
            )
        end as state_order
    from events

),

changes as (

    select
        profile_id,
        event_at,
        state_order,
        lag(state_order) over (
            partition by profile_id
            order by event_at, event_rank, scope_key, stage_order
        ) as previous_state_order,
        row_number() over (
            partition by profile_id
            order by event_at, event_rank, scope_key, stage_order
        ) as event_number
    from states
    where state_order is not null

),

spells as (

    select
        profile_id,
        state_order as stage_order,
        {{ stage_name_sql('state_order') }} as stage,
        event_at as entered_at,
        row_number() over (partition by profile_id order by event_number) as spell_number
    from changes
    where previous_state_order is null or previous_state_order <> state_order

),

linked as (

    select
        profile_id,
        stage,
        stage_order,
        spell_number,
        entered_at,
        lead(entered_at) over (partition by profile_id order by spell_number) as exited_at,
        lag(stage) over (partition by profile_id order by spell_number) as entered_from,
        lag(stage, 2) over (partition by profile_id order by spell_number) as stage_before_lapse,
        lead(stage) over (partition by profile_id order by spell_number) as exited_to,
        sum(case when stage_order = {{ lapsed_order }} then 1 else 0 end) over (
            partition by profile_id
            order by spell_number
            rows between unbounded preceding and current row
        ) as lapses_so_far
    from spells

),

marked as (

    select
        {{ dbt.hash(dbt.concat(["profile_id", "'|'", "cast(spell_number as " ~ dbt.type_string() ~ ")"])) }}
            as stage_spell_id,
        profile_id,
        stage,
        cast(stage_order as integer) as stage_order,
        cast(spell_number as integer) as spell_number,
        entered_at,
        exited_at,
        entered_from,
        exited_to,
        round({{ hours_between('entered_at', 'exited_at') }}, 2) as hours_in_stage,
        coalesce(
            case
                when entered_from = '{{ lapsed_stage() }}'
                    then {{ stage_rank_sql('stage') }} < {{ stage_rank_sql('stage_before_lapse') }}
                else {{ stage_rank_sql('stage') }} < {{ stage_rank_sql('entered_from') }}
            end,
            false
        ) as is_regression,
        exited_at is null as is_current,
        cast(lapses_so_far as integer) as lapses_so_far
    from linked

),

{#- running counts, so customer_current_stage reads the current spell alone -#}
final as (

    select
        *,
        cast(sum(case when is_regression then 1 else 0 end) over (
            partition by profile_id
            order by spell_number
            rows between unbounded preceding and current row
        ) as integer) as regressions_so_far,
        {{ build_timestamp() }} as rebuilt_at
    from marked

)

select * from final

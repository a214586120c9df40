{#-
    Attempts at the ordered funnels of var('funnels'), one row per profile per attempt. An
    attempt starts at a touchpoint of the funnel's first step that lies outside every earlier
    attempt's window, and its window closes window_days later; the next attempt starts at
    the first step-1 touchpoint at or after that. Touchpoints after the as-of time are not
    seen yet. Each profile's step-1 touchpoints are gathered into sorted arrays in one pass
    over the touchpoints, and the attempts chained by binary search in them
    (chained_attempts, with no goal: every attempt runs its whole window). Incremental by
    profile from its rebuild_from on: the attempts whose window closed before it are kept,
    and the chain goes on after the last of them.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='profile_tail_replace',
        profile_tail_column='window_ends_at',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['profile_id']}, {'columns': ['rebuilt_at']}],
        post_hook="{{ identity_analyze_sql(this) }}",
    )
}}
{%- set scope = profile_rebuild_scope() %}
{%- set funnels = funnel_definitions() %}

with recursive

touchpoints as (
    {{ touchpoints_until_as_of(['touchpoint_id', 'profile_id', 'touchpoint_type', 'occurred_at'], scope) }}
),

{#- a funnel attempt is an attempt without a goal: it runs its whole window -#}
{%- set attempt_groups = [] %}
{%- for funnel in funnels %}
    {%- do attempt_groups.append({
        'name': funnel.name,
        'entry_events': [funnel.steps[0]],
        'goal_events': [],
        'timeout_days': funnel.window_days,
        'entry_is_any': false,
        'repeatable': true,
    }) %}
{%- endfor %}

{%- if scope is not none %}

stored_attempts as (

    select
        funnel,
        profile_id,
        attempt_number,
        started_at,
        start_touchpoint_id,
        window_ends_at as ended_at,
        window_ends_at as tail_at,
        false as is_final
    from {{ this }}
    where true {{ profile_rebuild_filter(scope) }}

),
{%- endif %}

{{ chained_attempts('touchpoints', 'funnel', attempt_groups, 'attempt', scope, 'stored_attempts') }},

final as (

    select
        attempt_id,
        funnel,
        profile_id,
        attempt_number,
        start_touchpoint_id,
        started_at,
        ended_at as window_ends_at,
        {{ build_timestamp() }} as rebuilt_at
    from attempt_chosen

)

select * from final

{#-
    One row per profile per funnel attempt (int_funnel_attempts_chained) with the furthest
    step reached: the steps must happen in the funnel's order, each strictly after the one
    before it (a touchpoint at the same instant does not count) and all within the window
    from the first step. Not adjacent-step joins: step 3 is looked for after the time step 2
    was reached in this attempt. Incremental by profile from its rebuild_from on: an attempt
    whose window closed before it is kept as stored.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='profile_tail_replace',
    profile_tail_column='window_ends_at',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['profile_id']}, {'columns': ['rebuilt_at']}],
    post_hook="{{ identity_analyze_sql(this) }}",
    pre_hook="{{ episode_session_settings() }}",
) }}
{%- set scope = profile_rebuild_scope() %}

{%- set funnels = funnel_definitions() %}

with

attempts as (

    select * from {{ ref('int_funnel_attempts_chained') }} as chained
    where true {{ profile_rebuild_tail_filter(scope, 'chained', 'window_ends_at') }}

),

touchpoints as (
    {{ touchpoints_of_attempts(['profile_id', 'touchpoint_type', 'occurred_at'], 'attempts', scope) }}
),

funnel_steps as (
    {{ funnel_step_rows(funnels) }}
),

step_times as (
    {{ step_time_arrays('touchpoints', funnels | map(attribute='steps')) }}
),

attempt_windows as (

    select
        attempt_id,
        funnel,
        profile_id,
        started_at as window_from,
        window_ends_at as window_until
    from attempts

),

{#- attempts that reached at least their first step -#}
furthest as (
    {{ ordered_steps_reached('attempt_windows', 'funnel', funnels) }}
),

final as (

    select
        attempts.attempt_id,
        attempts.funnel,
        attempts.profile_id,
        attempts.attempt_number,
        attempts.started_at,
        attempts.window_ends_at,
        {{ utc_date('attempts.started_at') }} as started_day,
        cast(furthest_step.step_count as integer) as steps_total,
        cast(furthest.steps_reached as integer) as steps_reached,
        furthest_step.step as furthest_step,
        furthest.furthest_step_reached_at,
        furthest.steps_reached = furthest_step.step_count as is_converted,
        case
            when furthest.steps_reached = furthest_step.step_count
                then round({{ hours_between('attempts.started_at', 'furthest.furthest_step_reached_at') }}, 2)
        end as hours_to_convert,
        attempts.window_ends_at > {{ as_of_timestamp() }} as is_window_open,
        {{ build_timestamp() }} as rebuilt_at
    from attempts
    inner join furthest
        on furthest.attempt_id = attempts.attempt_id
    inner join funnel_steps as furthest_step
        on furthest_step.funnel = attempts.funnel
        and furthest_step.step_number = furthest.steps_reached

)

select * from final

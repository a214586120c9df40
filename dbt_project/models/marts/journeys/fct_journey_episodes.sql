{#-
    One row per profile per journey episode (int_journey_episodes_chained) with what happened
    in it: the touchpoints from its start to its completion or abandonment (to the as-of time
    while open), the journey's ordered steps reached, channels, friction (support contacts,
    unsubscribes, bounces, spam reports) and completed-order revenue (in
    var('reporting_currency')). The entry touchpoint is
    not counted as friction, and its order revenue counts only for entry_event '*' journeys
    (otherwise it is the previous episode's goal). Incremental by profile from its
    rebuild_from on: an episode that timed out before it (settled, its touchpoints unchanged)
    is kept as stored.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='profile_tail_replace',
    profile_tail_column='timeout_at',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['profile_id']}, {'columns': ['rebuilt_at']}],
    post_hook="{{ identity_analyze_sql(this) }}",
    pre_hook="{{ episode_session_settings() }}",
) }}
{%- set scope = profile_rebuild_scope() %}

{%- set journeys = journey_definitions() %}

with

episodes as (

    select * from {{ ref('int_journey_episodes_chained') }} as chained
    where true {{ profile_rebuild_tail_filter(scope, 'chained', 'timeout_at') }}

),

-- completed orders carry their revenue in var('reporting_currency') (int_orders_converted)
touchpoints as (

    select
        visible.*,
        converted_orders.revenue as reporting_amount
    from (
        {{ touchpoints_of_attempts(['touchpoint_id', 'profile_id', 'channel', 'touchpoint_type', 'occurred_at'], 'episodes', scope) }}
    ) as visible
    left join {{ ref('int_orders_converted') }} as converted_orders
        on converted_orders.profile_id = visible.profile_id
        and converted_orders.touchpoint_id = visible.touchpoint_id

),

journey_settings as (
    {{ journey_settings_rows(journeys) }}
),

{%- set stepped = journeys | selectattr('steps') | list %}
{%- if stepped %}

step_times as (
    {{ step_time_arrays('touchpoints', stepped | map(attribute='steps')) }}
),
{%- endif %}

episode_windows as (

    select
        episodes.episode_id as attempt_id,
        episodes.journey,
        episodes.profile_id,
        episodes.entry_touchpoint_id,
        episodes.started_at as window_from,
        coalesce(episodes.completed_at, episodes.abandoned_at, {{ as_of_timestamp() }}) as window_until,
        journey_settings.entry_is_any
    from episodes
    inner join journey_settings
        on journey_settings.journey = episodes.journey

),

episode_touchpoints as (

    select
        episode_windows.profile_id,
        episode_windows.attempt_id as episode_id,
        episode_windows.entry_is_any,
        touchpoints.touchpoint_id = episode_windows.entry_touchpoint_id as is_entry,
        touchpoints.channel,
        touchpoints.touchpoint_type,
        touchpoints.reporting_amount
    from episode_windows
    inner join touchpoints
        on touchpoints.profile_id = episode_windows.profile_id
        and touchpoints.occurred_at >= episode_windows.window_from
        and touchpoints.occurred_at <= episode_windows.window_until

),

{#- grouped by profile too: the join's output comes ordered by profile, so the episodes are
    sorted within each profile instead of all joined rows at once -#}
activity as (

    select
        episode_id,
        count(*) as touchpoint_count,
        count(distinct channel) as channel_count,
        sum(case when touchpoint_type = 'ticket_opened' and not is_entry then 1 else 0 end)
            as support_contacts,
        sum(case
            when touchpoint_type in ('email_unsubscribe', 'email_group_unsubscribe') and not is_entry
                then 1
            else 0
        end) as unsubscribes,
        sum(case
            when touchpoint_type in ('email_bounce', 'email_dropped', 'email_spamreport') and not is_entry
                then 1
            else 0
        end) as bounces,
        sum(case
            when touchpoint_type = 'order_completed' and (not is_entry or entry_is_any) then reporting_amount
            else 0
        end) as revenue
    from episode_touchpoints
    group by profile_id, episode_id

),

steps_reached as (

    {%- if stepped %}
    select attempt_id as episode_id, steps_reached
    from (
        {{- ordered_steps_reached('episode_windows', 'journey', stepped) }}
    ) as reached
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as episode_id, 0 as steps_reached
    where 1 = 0
    {%- endif %}

),

final as (

    select
        episodes.episode_id,
        episodes.journey,
        episodes.profile_id,
        episodes.episode_number,
        episodes.state,
        episodes.entry_touchpoint_id,
        episodes.started_at,
        episodes.completed_at,
        episodes.abandoned_at,
        episodes.timeout_at,
        episodes.timeout_at <= {{ as_of_timestamp() }} as is_settled,
        case
            when episodes.completed_at is not null
                then round({{ hours_between('episodes.started_at', 'episodes.completed_at') }}, 2)
        end as hours_to_goal,
        cast(journey_settings.step_count as integer) as steps_total,
        cast(coalesce(steps_reached.steps_reached, 0) as integer) as steps_reached,
        cast(coalesce(activity.touchpoint_count, 0) as integer) as touchpoint_count,
        cast(coalesce(activity.channel_count, 0) as integer) as channel_count,
        cast(coalesce(activity.support_contacts, 0) as integer) as support_contacts,
        cast(coalesce(activity.unsubscribes, 0) as integer) as unsubscribes,
        cast(coalesce(activity.bounces, 0) as integer) as bounces,
        coalesce(activity.revenue, 0) as revenue,
        {{ utc_date('episodes.started_at') }} as started_day,
        {{ build_timestamp() }} as rebuilt_at
    from episodes
    inner join journey_settings
        on journey_settings.journey = episodes.journey
    left join activity
        on activity.episode_id = episodes.episode_id
    left join steps_reached
        on steps_reached.episode_id = episodes.episode_id

)

select * from final

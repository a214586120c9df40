{#-
    Goal episodes of the journeys in var('journeys'), one row per profile per episode. An
    episode starts at an entry touchpoint while the profile is in no episode of that journey,
    completes at the first goal touchpoint strictly after its start (for entry_event '*', at
    or after it, the entry itself included) within timeout_days, and is abandoned when the
    timeout elapses first. The next episode starts at the first entry touchpoint at or after
    the previous one ended; a journey with repeatable: false stops after its first completion.
    Touchpoints after the as-of time are not seen yet.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='profile_replace',
        indexes=[{'columns': ['profile_id']}],
        pre_hook="{{ episode_session_settings() }}",
        post_hook="{{ identity_analyze_sql(this) }}",
    )
}}
{%- set scope = profile_rebuild_scope() %}
{%- set journeys = journey_definitions() %}

with recursive

touchpoints as (
    {{ touchpoints_until_as_of(['touchpoint_id', 'profile_id', 'touchpoint_type', 'occurred_at'], scope) }}
),

journey_settings as (
    {{ journey_settings_rows(journeys) }}
),

{#- entries rank 1; goals rank 0 (strictly after the entry) or 2 (at or after it, for '*') -#}
journey_events as (
    {%- for journey in journeys %}

    select
        cast('{{ journey.name }}' as {{ dbt.type_string() }}) as journey,
        profile_id,
        touchpoint_id,
        occurred_at,
        1 as event_rank,
        1 as is_entry
    from touchpoints
    where {{ touchpoint_type_in('touchpoint_type', journey.entry_events) }}

    union all

    select
        cast('{{ journey.name }}' as {{ dbt.type_string() }}),
        profile_id,
        touchpoint_id,
        occurred_at,
        {{ 2 if journey.entry_is_any else 0 }},
        0
    from touchpoints
    where {{ touchpoint_type_in('touchpoint_type', journey.goal_events) }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

{#- the first goal after each event: a running minimum over the later events -#}
next_goals as (

    select
        journey,
        profile_id,
        touchpoint_id,
        occurred_at,
        is_entry,
        min(case when is_entry = 0 then occurred_at end) over (
            partition by journey, profile_id
            order by occurred_at desc, event_rank desc
            rows between unbounded preceding and 1 preceding
        ) as next_goal_at
    from journey_events

),

entries as (

    select
        next_goals.journey,
        next_goals.profile_id,
        next_goals.touchpoint_id as entry_touchpoint_id,
        next_goals.occurred_at as started_at,
        next_goals.next_goal_at,
        {{ dbt.dateadd('day', 'journey_settings.timeout_days', 'next_goals.occurred_at') }} as timeout_at,
        journey_settings.is_repeatable,
        row_number() over (
            partition by next_goals.journey, next_goals.profile_id
            order by next_goals.occurred_at, next_goals.touchpoint_id
        ) as entry_number
    from next_goals
    inner join journey_settings
        on journey_settings.journey = next_goals.journey
    where next_goals.is_entry = 1

),

candidates as (

    select
        journey,
        profile_id,
        entry_number,
        entry_touchpoint_id as start_touchpoint_id,
        started_at,
        timeout_at,
        completed_at,
        coalesce(completed_at, timeout_at) as ended_at,
        (completed_at is not null and not is_repeatable) as is_final
    from (
        select
            entries.*,
            case when entries.next_goal_at <= entries.timeout_at then entries.next_goal_at end
                as completed_at
        from entries
    ) as entries_with_goal

),

{{ next_entry_pointers('candidates', 'journey', 'episode', ['start_touchpoint_id', 'started_at', 'ended_at', 'is_final', 'timeout_at', 'completed_at']) }},

final as (

    select
        attempt_id as episode_id,
        journey,
        profile_id,
        attempt_number as episode_number,
        start_touchpoint_id as entry_touchpoint_id,
        started_at,
        timeout_at,
        case
            when completed_at is not null then 'completed'
            when timeout_at <= {{ as_of_timestamp() }} then 'abandoned'
            else 'open'
        end as state,
        completed_at,
        case
            when completed_at is null and timeout_at <= {{ as_of_timestamp() }} then timeout_at
        end as abandoned_at
    from episode_chosen

)

select * from final

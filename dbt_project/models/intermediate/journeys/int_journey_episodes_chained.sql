{#-
    Goal episodes of the journeys in var('journeys'), one row per profile per episode. An
    episode starts at an entry touchpoint while the profile is in no episode of that journey,
    completes at the first goal touchpoint strictly after its start (for entry_event '*', at
    or after it, the entry itself included) within timeout_days, and is abandoned when the
    timeout elapses first. The next episode starts at the first entry touchpoint at or after
    the previous one ended; a journey with repeatable: false stops after its first completion.
    Touchpoints after the as-of time are not seen yet. Each profile's entries and goals are
    gathered into sorted arrays in one pass over the touchpoints, and the episodes are
    chained by binary search in them (chained_attempts).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='profile_replace',
        indexes=[{'columns': ['profile_id']}],
        post_hook="{{ identity_analyze_sql(this) }}",
    )
}}
{%- set scope = profile_rebuild_scope() %}
{%- set journeys = journey_definitions() %}

with recursive

touchpoints as (
    {{ touchpoints_until_as_of(['touchpoint_id', 'profile_id', 'touchpoint_type', 'occurred_at'], scope) }}
),

{#- per profile and journey: entries (touchpoint order) and goal times, sorted -#}
profile_events as (

    select
        profile_id
        {%- for journey in journeys %},
        array_agg(occurred_at order by occurred_at, touchpoint_id)
            filter (where {{ touchpoint_type_in('touchpoint_type', journey.entry_events) }})
            as entry_times_{{ loop.index }},
        array_agg(touchpoint_id order by occurred_at, touchpoint_id)
            filter (where {{ touchpoint_type_in('touchpoint_type', journey.entry_events) }})
            as entry_ids_{{ loop.index }},
        array_agg(occurred_at order by occurred_at)
            filter (where {{ touchpoint_type_in('touchpoint_type', journey.goal_events) }})
            as goal_times_{{ loop.index }}
        {%- endfor %}
    from touchpoints
    group by profile_id

),

journey_entries as (
    {%- for journey in journeys %}

    select
        cast('{{ journey.name }}' as {{ dbt.type_string() }}) as journey,
        profile_id,
        entry_times_{{ loop.index }} as entry_times,
        entry_ids_{{ loop.index }} as entry_ids,
        goal_times_{{ loop.index }} as goal_times,
        interval '{{ journey.timeout_days }} days' as timeout,
        interval '{{ 1 if journey.entry_is_any else 0 }} microsecond' as goal_offset,
        {{ 'true' if journey.repeatable else 'false' }} as is_repeatable
    from profile_events
    where entry_times_{{ loop.index }} is not null
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

{{ chained_attempts('journey_entries', 'journey', 'episode') }},

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

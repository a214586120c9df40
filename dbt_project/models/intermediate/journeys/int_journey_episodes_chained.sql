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

{{ chained_attempts('touchpoints', 'journey', journeys, 'episode') }},

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

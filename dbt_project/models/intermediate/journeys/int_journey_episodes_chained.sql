{#-
    Goal episodes of the journeys in var('journeys'), one row per profile per episode. An
    episode starts at an entry touchpoint while the profile is in no episode of that journey,
    completes at the first goal touchpoint strictly after its start (for entry_event '*', at
    or after it, the entry itself included) within timeout_days, and is abandoned when the
    timeout elapses first. The next episode starts at the first entry touchpoint at or after
    the previous one ended; a journey with repeatable: false stops after its first completion.
    Touchpoints after the as-of time are not seen yet. Each profile's entries and goals are
    gathered into sorted arrays in one pass over the touchpoints, and the episodes are
    chained by binary search in them (chained_attempts). Incremental by profile from its
    rebuild_from on: the episodes that timed out before it are kept, and the chain goes on
    after the last of them.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='profile_tail_replace',
        profile_tail_column='timeout_at',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['profile_id']}, {'columns': ['rebuilt_at']}],
        post_hook="{{ identity_analyze_sql(this) }}",
    )
}}
{%- set scope = profile_rebuild_scope() %}
{%- set journeys = journey_definitions() %}

with recursive

touchpoints as (
    {{ touchpoints_until_as_of(['touchpoint_id', 'profile_id', 'touchpoint_type', 'occurred_at'], scope) }}
),

{%- if scope is not none %}

journey_settings as (
    {{ journey_settings_rows(journeys) }}
),

stored_episodes as (

    select
        stored.journey,
        stored.profile_id,
        stored.episode_number as attempt_number,
        stored.started_at,
        stored.entry_touchpoint_id as start_touchpoint_id,
        coalesce(stored.completed_at, stored.timeout_at) as ended_at,
        stored.timeout_at as tail_at,
        stored.completed_at is not null and not journey_settings.is_repeatable as is_final
    from {{ this }} as stored
    inner join journey_settings
        on journey_settings.journey = stored.journey
    where true {{ profile_rebuild_filter(scope, 'stored.profile_id') }}

),
{%- endif %}

{{ chained_attempts('touchpoints', 'journey', journeys, 'episode', scope, 'stored_episodes') }},

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
        end as abandoned_at,
        {{ build_timestamp() }} as rebuilt_at
    from episode_chosen

)

select * from final

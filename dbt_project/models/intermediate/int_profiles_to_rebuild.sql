{#-
    The profiles whose profile-level marts this run recomputes (macros/profile_rebuild.sql),
    rebuilt every run from what changed since the previous build of this list:

      touchpoint       a touchpoint of the profile was written (restated_at)
      departure        a touchpoint left the profile (moved or vanished, int_touchpoint_departures)
      identity         an identifier of the profile was re-resolved, or moved away from it
                       (resolved_at, profile_changed_at / previous_profile_id)
      as_of            var('as_of') advanced past a moment that changes the profile's
                       state: a touchpoint lies in [previous as_of - d, as_of - d] for an
                       offset d of profile_time_offsets() (lapse due, episode timeout, funnel
                       window, rolling activity windows, stalled flag, newly visible touchpoints)

    Plus one row with a null profile_id recording the run: its as_of, build time, the rules
    fingerprint and rebuild_all, set when there is no previous list, on --full-refresh, when
    as_of went backwards (a backfill) or the rules changed: every profile is recomputed then.
-#}

{{ config(
    materialized='table',
    post_hook=["{{ profile_rebuild_prune_departures() }}"],
) }}

{%- set fingerprint = profile_rules_fingerprint() -%}
{%- set previous = profile_rebuild_previous_run(fingerprint) -%}
{%- set rebuild_all = previous is none -%}
{%- set touchpoints = ref('int_touchpoints_unioned') -%}
{%- set identifiers = ref('int_identifiers_resolved') -%}

with

run as (

    select
        cast(null as {{ dbt.type_string() }}) as profile_id,
        cast(null as {{ dbt.type_string() }}) as reasons,
        cast({{ as_of_timestamp() }} as timestamp with time zone) as as_of,
        {{ build_timestamp() }} as built_at,
        cast('{{ fingerprint }}' as {{ dbt.type_string() }}) as rules_fingerprint,
        {{ 'true' if rebuild_all else 'false' }} as rebuild_all

),

{%- if rebuild_all %}

listed as (

    select
        cast(null as {{ dbt.type_string() }}) as profile_id,
        cast(null as {{ dbt.type_string() }}) as reasons
    where 1 = 0

),

{%- else %}

{%- set since = utc_timestamp_literal(previous.built_at) %}
{%- set previous_as_of = utc_timestamp_literal(previous.as_of) %}
{%- set as_of = 'cast(' ~ as_of_timestamp() ~ ' as timestamp with time zone)' %}

changes as (

    select profile_id, 'touchpoint' as reason
    from {{ touchpoints }}
    where restated_at > {{ since }}

    union all

    select profile_id, 'departure'
    from {{ touchpoint_departures_relation() }}
    where departed_at > {{ since }}

    union all

    select profile_id, 'identity'
    from {{ identifiers }}
    where resolved_at > {{ since }}

    union all

    select previous_profile_id, 'identity'
    from {{ identifiers }}
    where profile_changed_at > {{ since }}

    union all

    select profile_id, 'as_of'
    from {{ touchpoints }}
    where
        {%- for days in profile_time_offsets() %}
        {{ 'or ' if not loop.first }}occurred_at between {{ dbt.dateadd('day', -days, previous_as_of) }}
            and {{ dbt.dateadd('day', -days, as_of) }}
        {%- endfor %}

),

listed as (

    select
        profile_id,
        {{ dbt.listagg('distinct reason', "','", 'order by reason') }} as reasons
    from changes
    where profile_id is not null
    group by profile_id

),

{%- endif %}

final as (

    select
        listed.profile_id,
        listed.reasons,
        run.as_of,
        run.built_at,
        run.rules_fingerprint,
        run.rebuild_all
    from listed
    cross join run

    union all

    select * from run

)

select * from final

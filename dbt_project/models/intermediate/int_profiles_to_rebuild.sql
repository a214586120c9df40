{#-
    The profiles whose profile-level marts this run recomputes (macros/profile_rebuild.sql),
    rebuilt every run from what changed since the previous build of this list:

      touchpoint   a touchpoint of the profile was inserted, changed, moved away or deleted
                   (int_touchpoint_changes; the restatement window's rows rewritten as they
                   were do not count)
      identity     an identifier of the profile was re-resolved, or moved away from it
                   (resolved_at, profile_changed_at / previous_profile_id)
      as_of        var('as_of') advanced past a moment that changes the profile's stored
                   state: a touchpoint became visible (occurred after the previous as_of),
                   its lapse fell due (int_customer_profiles.last_activity_at), a journey
                   episode timed out or settled, a funnel window closed
      retry        listed by the previous run, whose list was not confirmed as applied to
                   every profile mart (on-run-end profile_rebuild_confirm)

    Each listed profile carries rebuild_from: the earliest time from which its episodes in
    time can differ, so those models keep the rows that settled before it
    (profile_tail_replace): the earliest occurred_at of its changed touchpoints (old and new
    versions), never later than the previous as_of (what that run left open or unsettled is
    looked at again); '-infinity' (everything) on retry. An identity change alone sets none:
    its touchpoints moving between profiles are touchpoint changes of both.

    What moves with as_of for every profile (days in stage, rolling activity counts, the
    stalled flag, the repeat purchase rate) lives in views and needs no rebuild. One row
    with a null profile_id records the run: its as_of, build time, the rules fingerprint and
    rebuild_all, set when there is no previous list or stored mart, on --full-refresh, when
    as_of went backwards (a backfill) or the rules changed: every profile is recomputed then.
-#}

{{ config(
    materialized='table',
    post_hook=["{{ profile_rebuild_prune_changes() }}", "{{ identity_analyze_sql(this) }}"],
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
        cast(null as timestamp with time zone) as rebuild_from,
        cast({{ as_of_timestamp() }} as timestamp with time zone) as as_of,
        {{ build_timestamp() }} as built_at,
        cast('{{ fingerprint }}' as {{ dbt.type_string() }}) as rules_fingerprint,
        {{ 'true' if rebuild_all else 'false' }} as rebuild_all,
        false as confirmed

),

{%- if rebuild_all %}

listed as (

    select
        cast(null as {{ dbt.type_string() }}) as profile_id,
        cast(null as {{ dbt.type_string() }}) as reasons,
        cast(null as timestamp with time zone) as rebuild_from
    where 1 = 0

),

{%- else %}

{%- set since = utc_timestamp_literal(previous.built_at) %}
{%- set previous_as_of = utc_timestamp_literal(previous.as_of) %}
{%- set as_of = 'cast(' ~ as_of_timestamp() ~ ' as timestamp with time zone)' %}
{%- set lapse_days = journey_stage_config().lapsed.after_inactive_days %}
{%- set everything = "cast('-infinity' as timestamp with time zone)" %}

changes as (

    select profile_id, 'touchpoint' as reason, coalesce(changed_from, {{ everything }}) as rebuild_from
    from {{ touchpoint_changes_relation() }}
    where changed_at > {{ since }}

    union all

    select profile_id, 'identity', cast(null as timestamp with time zone)
    from {{ identifiers }}
    where resolved_at > {{ since }}

    union all

    select previous_profile_id, 'identity', cast(null as timestamp with time zone)
    from {{ identifiers }}
    where profile_changed_at > {{ since }}

    union all

    select profile_id, 'as_of', {{ previous_as_of }}
    from {{ touchpoints }}
    where occurred_at > {{ previous_as_of }}
        and occurred_at <= {{ as_of }}

    union all

    select profile_id, 'as_of', {{ previous_as_of }}
    from {{ previous.stored.int_customer_profiles }}
    where {{ dbt.dateadd('day', lapse_days, 'last_activity_at') }} > {{ previous_as_of }}
        and {{ dbt.dateadd('day', lapse_days, 'last_activity_at') }} <= {{ as_of }}

    union all

    select profile_id, 'as_of', {{ previous_as_of }}
    from {{ previous.stored.int_journey_episodes_chained }}
    where timeout_at > {{ previous_as_of }}
        and timeout_at <= {{ as_of }}

    union all

    select profile_id, 'as_of', {{ previous_as_of }}
    from {{ previous.stored.int_funnel_attempts_chained }}
    where window_ends_at > {{ previous_as_of }}
        and window_ends_at <= {{ as_of }}
    {%- if previous.unconfirmed %}

    union all

    {#- the previous list was not applied to every mart: recompute its profiles too #}
    select profile_id, 'retry', {{ everything }}
    from {{ previous.relation }}
    where profile_id is not null
    {%- endif %}

),

listed as (

    select
        profile_id,
        {{ dbt.listagg('distinct reason', "','", 'order by reason') }} as reasons,
        least(min(rebuild_from), {{ previous_as_of }}) as rebuild_from
    from changes
    where profile_id is not null
    group by profile_id

),

{%- endif %}

final as (

    select
        listed.profile_id,
        listed.reasons,
        listed.rebuild_from,
        run.as_of,
        run.built_at,
        run.rules_fingerprint,
        run.rebuild_all,
        run.confirmed
    from listed
    cross join run

    union all

    select * from run

)

select * from final

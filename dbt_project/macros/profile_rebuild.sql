{#-
    Profile-incremental marts: an incremental run recomputes only the profiles listed in
    int_profiles_to_rebuild. Each such model

      - reads its profile-level inputs through profile_rebuild_filter(scope, column), which
        on an incremental run keeps the listed profiles only (an index-friendly
        `= any(array(...))` on profile_id, so the planner scans the listed profiles' rows);
      - is materialized='incremental' with incremental_strategy='profile_replace': the rows
        of every listed profile are deleted (profiles that no longer exist included) and the
        recomputed rows inserted.

    A first run, a --full-refresh, or a run int_profiles_to_rebuild marks rebuild_all
    (first build of the list, as_of moved backwards, changed rules) rebuilds everything.
-#}

{#- The list relation when this run recomputes listed profiles only; none = everything. -#}
{% macro profile_rebuild_scope() -%}
    {%- set relation = ref('int_profiles_to_rebuild') -%}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set rows = run_query(
        'select rebuild_all from ' ~ relation ~ ' where profile_id is null'
    ).rows -%}
    {%- if rows | length == 0 or rows[0][0] -%}{{ return(none) }}{%- endif -%}
    {{ return(relation) }}
{%- endmacro %}


{#- `and <column> is one of the listed profiles` on an incremental run, nothing otherwise. -#}
{% macro profile_rebuild_filter(scope, column='profile_id') -%}
    {%- if scope is not none %}
    and {{ column }} = any(array(
        select listed.profile_id from {{ scope }} as listed where listed.profile_id is not null
    ))
    {%- endif %}
{%- endmacro %}


{#- Custom incremental strategy: replace the listed profiles' rows (all rows without a list). -#}
{% macro get_incremental_profile_replace_sql(arg_dict) -%}
    {%- set scope = profile_rebuild_scope() -%}
    delete from {{ arg_dict['target_relation'] }}
    where true {{ profile_rebuild_filter(scope) }};
    {{ get_incremental_append_sql(arg_dict) }}
{%- endmacro %}


{#-
    Whole days before var('as_of') at which a touchpoint's time can change a profile's
    result when as_of advances: newly visible touchpoints (0), stalled_days, the rolling
    30/90-day activity windows, the lapse after inactivity, journey timeouts and funnel
    windows.
-#}
{% macro profile_time_offsets() -%}
    {%- set offsets = [0, var('stalled_days'), 30, 90, journey_stage_config().lapsed.after_inactive_days] -%}
    {%- for journey in journey_definitions() %}{% do offsets.append(journey.timeout_days) %}{% endfor -%}
    {%- for funnel in funnel_definitions() %}{% do offsets.append(funnel.window_days) %}{% endfor -%}
    {{ return(offsets | map('int') | unique | sort | list) }}
{%- endmacro %}


{#- Hash of the settings the profile marts are computed with: a change rebuilds them all. -#}
{% macro profile_rules_fingerprint() -%}
    {%- set settings = {
        'journey_stage_rules': var('journey_stage_rules'),
        'journeys': var('journeys'),
        'funnels': var('funnels'),
        'stalled_days': var('stalled_days'),
        'reporting_currency': var('reporting_currency'),
    } -%}
    {{ return(local_md5(tojson(settings, sort_keys=true))) }}
{%- endmacro %}


{#-
    Profiles whose touchpoints int_touchpoints_unioned removed or moved to another profile
    (kept until int_profiles_to_rebuild has read them): a restated record whose profile
    changed, a record that vanished from a re-delivered source.
-#}
{% macro touchpoint_departures_relation(touchpoints=none) -%}
    {%- set touchpoints = touchpoints if touchpoints is not none else ref('int_touchpoints_unioned') -%}
    {{ return(api.Relation.create(
        database=touchpoints.database,
        schema=touchpoints.schema,
        identifier='int_touchpoint_departures',
        type='table',
    )) }}
{%- endmacro %}

{% macro touchpoint_departures_create_sql(touchpoints) -%}
    create table if not exists {{ touchpoint_departures_relation(touchpoints) }} (
        profile_id {{ dbt.type_string() }} not null,
        departed_at timestamp with time zone not null
    )
{%- endmacro %}


{#-
    Custom incremental strategy of int_touchpoints_unioned: delete+insert on (source,
    source_record_id), logging the profile a replaced row leaves when its profile changes.
-#}
{% macro get_incremental_touchpoint_replace_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    with replaced as (
        delete from {{ target }} as target
        using {{ source }} as restated
        where target.source = restated.source
            and target.source_record_id = restated.source_record_id
        returning target.profile_id, restated.profile_id as new_profile_id
    )
    insert into {{ touchpoint_departures_relation(target) }} (profile_id, departed_at)
    select distinct profile_id, {{ build_timestamp() }}
    from replaced
    where profile_id is not null
        and (new_profile_id is null or new_profile_id <> profile_id);
    {{ get_incremental_append_sql(arg_dict) }}
{%- endmacro %}


{#-
    The run int_profiles_to_rebuild last recorded: {built_at, as_of} as text, or none when
    this run must recompute every profile (no previous list, --full-refresh, as_of went
    backwards, other rules).
-#}
{% macro profile_rebuild_previous_run(fingerprint) -%}
    {%- if not execute or flags.FULL_REFRESH -%}{{ return(none) }}{%- endif -%}
    {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) -%}
    {%- if existing is none -%}{{ return(none) }}{%- endif -%}
    {%- set rows = run_query(
        'select cast(built_at as ' ~ dbt.type_string() ~ '), cast(as_of as ' ~ dbt.type_string() ~ '),'
        ~ ' rules_fingerprint, as_of > cast(' ~ as_of_timestamp() ~ ' as timestamp with time zone)'
        ~ ' from ' ~ existing ~ ' where profile_id is null'
    ).rows -%}
    {%- if rows | length != 1 -%}{{ return(none) }}{%- endif -%}
    {%- set row = rows[0] -%}
    {%- if row[0] is none or row[1] is none or row[2] != fingerprint or row[3] -%}
        {{ log(this.identifier ~ ': every profile is recomputed (as_of went backwards or the rules changed)', info=True) }}
        {{ return(none) }}
    {%- endif -%}
    {{ return({'built_at': row[0], 'as_of': row[1]}) }}
{%- endmacro %}


{#- Post-hook of int_profiles_to_rebuild: departures it has read are not needed any more. -#}
{% macro profile_rebuild_prune_departures() -%}
    delete from {{ touchpoint_departures_relation() }}
    where departed_at <= (select built_at from {{ this }} where profile_id is null)
{%- endmacro %}

{#-
    Profile-incremental marts: an incremental run recomputes only the profiles listed in
    int_profiles_to_rebuild. Each such model

      - reads its profile-level inputs through profile_rebuild_filter(scope, column), which
        on an incremental run keeps the listed profiles only (an index-friendly
        `= any(array(...))` on profile_id, so the planner scans the listed profiles' rows;
        a hashable semi-join for inputs without a profile_id index);
      - is materialized='incremental' with incremental_strategy='profile_replace': the rows
        of every listed profile are deleted (profiles that no longer exist included) and the
        recomputed rows inserted.

    Models whose rows are periods of a profile's time (journey episodes, funnel attempts,
    customer weeks) use incremental_strategy='profile_tail_replace' instead: only the listed
    profiles' rows whose config profile_tail_column (a time) is at or after the profile's
    rebuild_from are replaced (profile_rebuild_tail_filter); earlier rows cannot have changed.

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


{#- `and <column> is one of the listed profiles` on an incremental run, nothing otherwise.
    indexed=true (a relation with an index on the column): `= any(array(...))`, which the
    planner answers with an index scan of the listed profiles' rows. indexed=false: a
    semi-join the planner can hash; `= any(array(...))` on a sequential scan compares every
    row with every listed profile (rows x list, 1.35 s of 2.1 s on 22 k identifiers with
    2.9 k listed profiles). -#}
{% macro profile_rebuild_filter(scope, column='profile_id', indexed=true) -%}
    {%- if scope is not none %}
    {%- set listed -%}
        select listed.profile_id from {{ scope }} as listed where listed.profile_id is not null
    {%- endset %}
    {%- if indexed %}
    and {{ column }} = any(array({{ listed }}))
    {%- else %}
    and {{ column }} in ({{ listed }})
    {%- endif %}
    {%- endif %}
{%- endmacro %}


{#- `and <alias>.<column> is at or after its listed profile's rebuild_from` on an incremental
    run (with profile_rebuild_filter on the profile, which finds the rows by index), nothing
    otherwise. -#}
{% macro profile_rebuild_tail_filter(scope, alias, column) -%}
    {%- if scope is not none %}
    {{- profile_rebuild_filter(scope, alias ~ '.profile_id') }}
    and exists (
        select 1 from {{ scope }} as listed
        where listed.profile_id = {{ alias }}.profile_id
            and {{ alias }}.{{ column }} >= listed.rebuild_from
    )
    {%- endif %}
{%- endmacro %}


{#- Custom incremental strategy: replace the listed profiles' rows (all rows without a list).
    A model using it analyzes its table in a post-hook (identity_analyze_sql), after every
    build: the next run's delete, and the models reading the table, look the listed profiles
    up with `= any(array(...))`, which without statistics the planner may answer with a
    sequential scan comparing every row with every listed profile; and its data tests find the
    rows written since they last passed by rebuilt_at, a value that is not in statistics
    taken before the insert (estimated at one row, one relationships test ran a nested loop
    for 8 minutes). -#}
{% macro get_incremental_profile_replace_sql(arg_dict) -%}
    {%- set scope = profile_rebuild_scope() -%}
    {% call listed_rows_by_bitmap() -%}
    delete from {{ arg_dict['target_relation'] }}
    where true {{ profile_rebuild_filter(scope) }}
    {%- endcall %};
    {{ get_incremental_append_sql(arg_dict) }}
{%- endmacro %}


{#- Custom incremental strategy: replace the listed profiles' rows from their rebuild_from on
    (by the model's config profile_tail_column); all rows without a list. Analyzed in a
    post-hook, as above. -#}
{% macro get_incremental_profile_tail_replace_sql(arg_dict) -%}
    {%- set scope = profile_rebuild_scope() -%}
    {%- set column = config.require('profile_tail_column') -%}
    {% call listed_rows_by_bitmap() -%}
    delete from {{ arg_dict['target_relation'] }} as stored
    where true {{ profile_rebuild_tail_filter(scope, 'stored', column) }}
    {%- endcall %};
    {{ get_incremental_append_sql(arg_dict) }}
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
    Profiles whose touchpoints changed in int_touchpoints_unioned (kept until
    int_profiles_to_rebuild has read them): a row inserted, changed (any column but
    restated_at), moved to another profile (both profiles) or deleted. Rows of the
    restatement window rewritten as they were do not count.
-#}
{% macro touchpoint_changes_relation(touchpoints=none) -%}
    {%- set touchpoints = touchpoints if touchpoints is not none else ref('int_touchpoints_unioned') -%}
    {{ return(api.Relation.create(
        database=touchpoints.database,
        schema=touchpoints.schema,
        identifier='int_touchpoint_changes',
        type='table',
    )) }}
{%- endmacro %}

{% macro touchpoint_changes_create_sql(touchpoints) -%}
    create table if not exists {{ touchpoint_changes_relation(touchpoints) }} (
        profile_id {{ dbt.type_string() }} not null,
        changed_at timestamp with time zone not null,
        changed_from timestamp with time zone
    );
    alter table {{ touchpoint_changes_relation(touchpoints) }}
        add column if not exists changed_from timestamp with time zone
{%- endmacro %}


{#- Log the profiles of the `changed` rows (profile_id, occurred_at: a CTE) with the earliest
    time each changed at. -#}
{% macro touchpoint_changes_insert_sql(relation, changed) -%}
    insert into {{ touchpoint_changes_relation(relation) }} (profile_id, changed_at, changed_from)
    select profile_id, {{ build_timestamp() }}, min(occurred_at)
    from {{ changed }}
    where profile_id is not null
    group by profile_id
{%- endmacro %}


{#-
    Custom incremental strategy of int_touchpoints_unioned: the restated records (the
    model's rows, `restated`) are compared with the stored rows by touchpoint id, and only
    the differences are written, each logged with its profile (int_touchpoint_changes):
      - a stored row whose restated version differs (any column but restated_at) is
        replaced; a restated row not stored yet is inserted;
      - a stored row no source holds any more is deleted: one inside the restatement window
        of a source it was restated for (the plan's window_sources) that was not restated (a
        restated day holds exactly what the sources hold now), or one of a restated record
        that it no longer yields (a reopened ticket's solved row).
    Rows restated as they were stay as stored (with their restated_at), so a run writes,
    and the data tests and gates check, only what changed.
-#}
{% macro get_incremental_touchpoint_replace_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set names = arg_dict['dest_columns'] | map(attribute='name') | list -%}
    {%- set compared = names | reject('equalto', 'restated_at') | list -%}
    {%- set window_start = utc_timestamp_literal(touchpoint_window_start()) -%}
    {#- the plan's window_sources: it dropped their record counts -#}
    {%- set window_sources = source_increment_uncounted(target, touchpoint_sources()) -%}
    {%- set restated_ids = 'select touchpoint_id from ' ~ source %}
    {{ identity_analyze_sql(source) }};
    with removed as (
        delete from {{ target }} as stored
        where stored.touchpoint_id in (
            select stored.touchpoint_id
            from {{ target }} as stored
            inner join {{ source }} as restated
                on restated.touchpoint_id = stored.touchpoint_id
            where stored.touchpoint_id = any(array({{ restated_ids }}))
                and ({{ qualified_columns(compared, 'stored') }})
                    is distinct from ({{ qualified_columns(compared, 'restated') }})

            union all

            (
                {%- if window_sources %}
                select stored.touchpoint_id
                from {{ target }} as stored
                where stored.occurred_at >= {{ window_start }}
                    and stored.source in ('{{ window_sources | join("', '") }}')

                union

                {%- endif %}
                select stored.touchpoint_id
                from {{ target }} as stored
                inner join (
                    select distinct source, source_record_id from {{ source }}
                ) as restated_records
                    on restated_records.source = stored.source
                    and restated_records.source_record_id = stored.source_record_id
                where stored.source_record_id = any(array(select source_record_id from {{ source }}))

                except

                {{ restated_ids }}
            )
        )
        returning stored.profile_id, stored.occurred_at
    )
    {{ touchpoint_changes_insert_sql(target, 'removed') }};
    with added as (
        insert into {{ target }} ({{ names | join(', ') }})
        select {{ qualified_columns(names, 'restated') }}
        from {{ source }} as restated
        left join (
            select touchpoint_id from {{ target }}
            where touchpoint_id = any(array({{ restated_ids }}))
        ) as stored
            on stored.touchpoint_id = restated.touchpoint_id
        where stored.touchpoint_id is null
        returning profile_id, occurred_at
    )
    {{ touchpoint_changes_insert_sql(target, 'added') }}
{%- endmacro %}


{#- A stored model's relation (without a ref: the list reads models that depend on it),
    none when it does not exist yet. -#}
{% macro profile_rebuild_stored_relation(model_name) -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ model_name] -%}
    {{ return(adapter.get_relation(node.database, node.schema, node.alias or node.name)) }}
{%- endmacro %}


{#-
    The run int_profiles_to_rebuild last recorded: {built_at, as_of} as text and the stored
    marts whose due times it reads, or none when this run must recompute every profile (no
    previous list or stored mart, --full-refresh, as_of went backwards, other rules).
-#}
{% macro profile_rebuild_previous_run(fingerprint) -%}
    {%- if not execute or flags.FULL_REFRESH -%}{{ return(none) }}{%- endif -%}
    {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) -%}
    {%- if existing is none -%}{{ return(none) }}{%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(existing) | map(attribute='name') | list -%}
    {%- if 'confirmed' not in columns -%}{{ return(none) }}{%- endif -%}
    {%- set rows = run_query(
        'select cast(built_at as ' ~ dbt.type_string() ~ '), cast(as_of as ' ~ dbt.type_string() ~ '),'
        ~ ' rules_fingerprint, as_of > cast(' ~ as_of_timestamp() ~ ' as timestamp with time zone),'
        ~ ' rebuild_all, confirmed'
        ~ ' from ' ~ existing ~ ' where profile_id is null'
    ).rows -%}
    {%- if rows | length != 1 -%}{{ return(none) }}{%- endif -%}
    {%- set row = rows[0] -%}
    {%- if row[0] is none or row[1] is none or row[2] != fingerprint or row[3] -%}
        {{ log(this.identifier ~ ': every profile is recomputed (as_of went backwards or the rules changed)', info=True) }}
        {{ return(none) }}
    {%- endif -%}
    {%- if row[4] and not row[5] -%}
        {{ log(this.identifier ~ ': the previous full recompute did not complete, recomputing every profile', info=True) }}
        {{ return(none) }}
    {%- endif -%}
    {%- set stored = {} -%}
    {%- for name in ['int_customer_profiles', 'int_journey_episodes_chained', 'int_funnel_attempts_chained'] -%}
        {%- set relation = profile_rebuild_stored_relation(name) -%}
        {%- if relation is none -%}{{ return(none) }}{%- endif -%}
        {%- do stored.update({name: relation}) -%}
    {%- endfor -%}
    {{ return({'built_at': row[0], 'as_of': row[1], 'stored': stored, 'unconfirmed': not row[5], 'relation': existing}) }}
{%- endmacro %}


{#- Post-hook of int_profiles_to_rebuild: changes it has read are not needed any more. -#}
{% macro profile_rebuild_prune_changes() -%}
    delete from {{ touchpoint_changes_relation() }}
    where changed_at <= (select built_at from {{ this }} where profile_id is null)
{%- endmacro %}


{#- The models that replace the listed profiles' rows (incremental_strategy profile_replace
    or profile_tail_replace). -#}
{% macro profile_rebuild_models() -%}
    {%- set names = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model'
            and node.config.get('incremental_strategy') in ['profile_replace', 'profile_tail_replace'] -%}
            {%- do names.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}


{#-
    on-run-end: when this invocation built int_profiles_to_rebuild and every profile_replace
    model successfully, mark the list as applied. An unconfirmed list (a run that failed or
    stopped in between) is carried over into the next run's list.
-#}
{% macro profile_rebuild_confirm(results) -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set statuses = {} -%}
    {%- for result in results -%}
        {%- do statuses.update({result.node.name: result.status | string}) -%}
    {%- endfor -%}
    {%- for name in ['int_profiles_to_rebuild'] + profile_rebuild_models() -%}
        {%- if statuses.get(name) != 'success' -%}{{ return('') }}{%- endif -%}
    {%- endfor -%}
    {%- set listed = profile_rebuild_stored_relation('int_profiles_to_rebuild') %}
    update {{ listed }}
    set confirmed = true
    where profile_id is null;
    {{ profile_rebuild_log_unchecked(listed) }}
{%- endmacro %}


{#-
    The profiles rebuilt since gate_marts last took them (dq.profiles_rebuilt_unchecked, a set;
    a null profile_id stands for every profile). Every confirmed build adds its list, so a
    build whose gate never ran (a run that stopped in between) is still validated by the next
    gate: the gate moves the set into its pending profiles in one transaction.
-#}
{% macro profile_rebuild_log_unchecked(listed) -%}
    create schema if not exists dq;
    create table if not exists dq.profiles_rebuilt_unchecked (profile_id text);
    create index if not exists profiles_rebuilt_unchecked_profile
        on dq.profiles_rebuilt_unchecked (profile_id);
    insert into dq.profiles_rebuilt_unchecked (profile_id)
    select null
    where exists (select 1 from {{ listed }} where profile_id is null and rebuild_all)
        and not exists (select 1 from dq.profiles_rebuilt_unchecked where profile_id is null);
    delete from dq.profiles_rebuilt_unchecked
    where profile_id is not null
        and exists (select 1 from dq.profiles_rebuilt_unchecked where profile_id is null);
    insert into dq.profiles_rebuilt_unchecked (profile_id)
    select distinct listed.profile_id
    from {{ listed }} as listed
    where listed.profile_id is not null
        and not exists (select 1 from dq.profiles_rebuilt_unchecked where profile_id is null)
        and not exists (
            select 1 from dq.profiles_rebuilt_unchecked as unchecked
            where unchecked.profile_id = listed.profile_id
        )
{%- endmacro %}

{#-
    Survivor and profile id per component: the identifier seen first survives (ties: the
    smallest identifier_key, i.e. type then value; see identity__component_stats_sql) and
    profile_id = 'p_' || left(md5(identifier_key), 16) is derived from it, so the id
    depends only on the component's content: the same after an incremental run and after
    a full rebuild.
-#}
{% macro identity__survivors(stats) -%}
    {#- computed with the component statistics (identity__component_stats_sql) -#}
    {{ return(stats) }}
{%- endmacro %}


{#- The value part of an identifier_key (everything after the first ':'). -#}
{% macro identity__key_value(key_column) -%}
    {{ return(adapter.dispatch('identity__key_value', 'journeyflow')(key_column)) }}
{%- endmacro %}

{% macro default__identity__key_value(key_column) -%}
    {{ dbt.right(key_column, dbt.length(key_column) ~ ' - ' ~ dbt.position("':'", key_column)) }}
{%- endmacro %}

{% macro postgres__identity__key_value(key_column) -%}
    substr({{ key_column }}, strpos({{ key_column }}, ':') + 1)
{%- endmacro %}


{#- Every identifier of the scope with its profile (a temporary table when `materialize`). -#}
{% macro identity__resolved(components, survivors, materialize) -%}
    {%- set resolved_sql = '
        select
            components.identifier_key,
            components.identifier_type,
            components.identifier_value,
            survivors.profile_id,
            survivors.survivor_identifier_type,
            survivors.survivor_identifier_value,
            survivors.cluster_size,
            components.first_seen_at,
            components.last_seen_at,
            components.limit_applied
        from ' ~ components ~ ' as components
        inner join ' ~ survivors ~ ' as survivors on survivors.component = components.component' -%}
    {%- if materialize -%}
        {{ return(identity__temp_table('resolved', resolved_sql, analyze=true)) }}
    {%- endif -%}
    {{ return('(' ~ resolved_sql ~ ')') }}
{%- endmacro %}


{#- True when `relation` is a resolution this materialization wrote (it has its columns but
    perhaps those added since, see identity__added_columns). -#}
{% macro identity__is_resolution_state(relation) -%}
    {%- if relation is none -%}{{ return(false) }}{%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- for column in identity__resolved_columns() if column not in identity__added_columns() -%}
        {%- if column not in names -%}{{ return(false) }}{%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}


{#- Columns added to the resolution after it first shipped, with their type: a stored
    resolution without them gets them (null) and keeps its history. -#}
{% macro identity__added_columns() -%}
    {{ return({'limit_applied': dbt.type_boolean()}) }}
{%- endmacro %}

{% macro identity__add_missing_columns(relation) -%}
    {%- if relation is none -%}{{ return(none) }}{%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- for column, column_type in identity__added_columns().items() if column not in names -%}
        {% do run_query('alter table ' ~ relation ~ ' add column ' ~ column ~ ' ' ~ column_type) %}
    {%- endfor -%}
{%- endmacro %}


{#-
    Profile id changes against the previous resolution: one row per (previous_profile_id,
    profile_id) pair for identifiers whose profile id changed, with the rule:
      identifier_link   the new profile also holds identifiers from outside the previous
                        one (another profile, or identifiers seen for the first time) that
                        a record linked to it; linking_edge_id / linking_record_id name
                        that link (the newest one, then the first record that carried it)
      split             the new profile holds part of the previous one, without its
                        survivor (a link was removed, blocklisted or cut by a limit rule)
      survivor_changed  same identifiers, but another one is now the oldest
-#}
{% macro identity__changes(resolved, scope, previous_relation) -%}
    {%- set empty_changes = '
        select
            cast(null as ' ~ dbt.type_string() ~ ') as previous_profile_id,
            cast(null as ' ~ dbt.type_string() ~ ') as profile_id,
            cast(null as ' ~ dbt.type_string() ~ ') as change_rule,
            cast(null as ' ~ dbt.type_string() ~ ') as linking_edge_id,
            cast(null as ' ~ dbt.type_string() ~ ') as linking_record_id
        where 1 = 0' -%}
    {%- if previous_relation is none -%}
        {{ return(identity__temp_table('changes', empty_changes)) }}
    {%- endif -%}

    {%- set moved = identity__temp_table('moved', '
        select resolved.profile_id, previous.profile_id as previous_profile_id
        from ' ~ resolved ~ ' as resolved
        inner join ' ~ previous_relation ~ ' as previous
            on previous.identifier_key = resolved.identifier_key
        where previous.profile_id <> resolved.profile_id'
    ) -%}
    {%- if identity__scalar('select count(*) from ' ~ moved) == 0 -%}
        {{ return(identity__temp_table('changes', empty_changes)) }}
    {%- endif -%}

    {%- set members = identity__temp_table('moved_members', '
        select
            resolved.identifier_key,
            resolved.identifier_type,
            resolved.identifier_value,
            resolved.profile_id,
            previous.profile_id as previous_profile_id
        from ' ~ resolved ~ ' as resolved
        left join ' ~ previous_relation ~ ' as previous
            on previous.identifier_key = resolved.identifier_key
        where resolved.profile_id in (select profile_id from ' ~ moved ~ ')'
    ) -%}

    {{ return(identity__temp_table('changes', '
        with

        pairs as (
            select distinct previous_profile_id, profile_id from ' ~ moved ~ '
        ),

        with_outsiders as (
            select pairs.previous_profile_id, pairs.profile_id
            from pairs
            inner join ' ~ members ~ ' as members on members.profile_id = pairs.profile_id
            where coalesce(members.previous_profile_id, \'\') <> pairs.previous_profile_id
            group by pairs.previous_profile_id, pairs.profile_id
        ),

        previous_survivors as (
            select distinct profile_id, survivor_identifier_type, survivor_identifier_value
            from ' ~ previous_relation ~ '
            where profile_id in (select previous_profile_id from pairs)
        ),

        keeping_survivor as (
            select pairs.previous_profile_id, pairs.profile_id
            from pairs
            inner join previous_survivors
                on previous_survivors.profile_id = pairs.previous_profile_id
            inner join ' ~ members ~ ' as members
                on members.profile_id = pairs.profile_id
                and members.identifier_type = previous_survivors.survivor_identifier_type
                and members.identifier_value = previous_survivors.survivor_identifier_value
        ),

        crossing as (
            select
                left_member.profile_id,
                left_member.previous_profile_id as left_previous,
                right_member.previous_profile_id as right_previous,
                scope_edges.edge_id,
                scope_edges.first_record_id,
                scope_edges.changed_at,
                scope_edges.first_seen_at
            from ' ~ scope.edges ~ '
            inner join ' ~ members ~ ' as left_member
                on left_member.identifier_key = ' ~ identity__key('scope_edges.left_identifier_type', 'scope_edges.left_identifier_value') ~ '
            inner join ' ~ members ~ ' as right_member
                on right_member.identifier_key = ' ~ identity__key('scope_edges.right_identifier_type', 'scope_edges.right_identifier_value') ~ '
            where not scope_edges.is_self_edge
                and left_member.profile_id = right_member.profile_id
                and coalesce(left_member.previous_profile_id, \'\')
                    <> coalesce(right_member.previous_profile_id, \'\')
        ),

        crossing_by_previous as (
            select profile_id, left_previous as previous_profile_id, edge_id, first_record_id, changed_at, first_seen_at
            from crossing where left_previous is not null
            union all
            select profile_id, right_previous, edge_id, first_record_id, changed_at, first_seen_at
            from crossing where right_previous is not null
        ),

        ranked_links as (
            select
                crossing_by_previous.*,
                row_number() over (
                    partition by previous_profile_id, profile_id
                    order by changed_at desc, first_seen_at, edge_id
                ) as link_rank
            from crossing_by_previous
        )

        select
            pairs.previous_profile_id,
            pairs.profile_id,
            case
                when with_outsiders.profile_id is not null then \'identifier_link\'
                when keeping_survivor.profile_id is null then \'split\'
                else \'survivor_changed\'
            end as change_rule,
            case when with_outsiders.profile_id is not null then ranked_links.edge_id end
                as linking_edge_id,
            case when with_outsiders.profile_id is not null then ranked_links.first_record_id end
                as linking_record_id
        from pairs
        left join with_outsiders
            on with_outsiders.previous_profile_id = pairs.previous_profile_id
            and with_outsiders.profile_id = pairs.profile_id
        left join keeping_survivor
            on keeping_survivor.previous_profile_id = pairs.previous_profile_id
            and keeping_survivor.profile_id = pairs.profile_id
        left join ranked_links
            on ranked_links.previous_profile_id = pairs.previous_profile_id
            and ranked_links.profile_id = pairs.profile_id
            and ranked_links.link_rank = 1'
    )) }}
{%- endmacro %}


{#- The rows to write: resolution, change history carried over or replaced, resolved_at. -#}
{% macro identity__final_sql(resolved, changes, previous_relation) -%}
    {%- set run_at = build_timestamp() -%}
    {%- set no_time = 'case when 1 = 0 then ' ~ run_at ~ ' end' -%}
    {%- set no_text = 'cast(null as ' ~ dbt.type_string() ~ ')' -%}
    {%- if previous_relation is none -%}
        {{ return('
            select
                identifier_key, identifier_type, identifier_value, profile_id,
                survivor_identifier_type, survivor_identifier_value, cluster_size,
                first_seen_at, last_seen_at,
                ' ~ no_text ~ ' as previous_profile_id,
                ' ~ no_time ~ ' as profile_changed_at,
                ' ~ no_text ~ ' as change_rule,
                ' ~ no_text ~ ' as linking_edge_id,
                ' ~ no_text ~ ' as linking_record_id,
                ' ~ run_at ~ ' as resolved_at,
                \'' ~ identity__rules_fingerprint() ~ '\' as rules_fingerprint,
                limit_applied
            from ' ~ resolved ~ ' as resolved') }}
    {%- endif -%}
    {%- set changed = 'changes.profile_id is not null' -%}
    {{ return('
        select
            resolved.identifier_key,
            resolved.identifier_type,
            resolved.identifier_value,
            resolved.profile_id,
            resolved.survivor_identifier_type,
            resolved.survivor_identifier_value,
            resolved.cluster_size,
            resolved.first_seen_at,
            resolved.last_seen_at,
            case when ' ~ changed ~ ' then changes.previous_profile_id else previous.previous_profile_id end
                as previous_profile_id,
            case when ' ~ changed ~ ' then ' ~ run_at ~ ' else previous.profile_changed_at end
                as profile_changed_at,
            case when ' ~ changed ~ ' then changes.change_rule else previous.change_rule end
                as change_rule,
            case when ' ~ changed ~ ' then changes.linking_edge_id else previous.linking_edge_id end
                as linking_edge_id,
            case when ' ~ changed ~ ' then changes.linking_record_id else previous.linking_record_id end
                as linking_record_id,
            ' ~ run_at ~ ' as resolved_at,
            \'' ~ identity__rules_fingerprint() ~ '\' as rules_fingerprint,
            resolved.limit_applied
        from ' ~ resolved ~ ' as resolved
        left join ' ~ previous_relation ~ ' as previous
            on previous.identifier_key = resolved.identifier_key
        left join ' ~ changes ~ ' as changes
            on changes.previous_profile_id = previous.profile_id
            and changes.profile_id = resolved.profile_id'
    ) }}
{%- endmacro %}

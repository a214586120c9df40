{#-
    Which part of the identity graph a run resolves.

    full         every active edge; when the table does not exist yet, on --full-refresh,
                 when var identity_limits, identity_priority or max_cluster_size changed
                 since the stored resolution, and when every edge changed since the last
                 resolution (e.g. after the edges were rebuilt)
    incremental  edges changed since the last resolution (changed_at > max(resolved_at)),
                 their identifiers, and every identifier of the profiles those belonged to.
                 Profiles that a limit rule split apart are still linked by the cut edge,
                 so they are added until no active edge leaves the set. Then nothing outside
                 the set can change: a changed edge has both ends inside, and any other edge
                 lies inside an old profile. This is checked; if it does not hold, the run
                 falls back to full.

                 An edge only seen again (same ends, still active, not seen earlier:
                 int_identity_edges.structure_changed_at) changes no profile unless a limit
                 rule split its component (limit_applied, where times_seen orders the
                 links): elsewhere it is left out of the set, and seen_again gives the
                 new last_seen_at of the identifiers such self-edges stand for.

    Returns {mode, edges: the scope's active edges (aliased scope_edges),
             identifiers: relation of the scope's identifiers (incremental only),
             seen_again: select of identifier_key, last_seen_at (incremental only)}.
-#}
{% macro identity__scope(existing_relation, edges) -%}

    {%- set full = {'mode': 'full', 'edges': '(select * from ' ~ edges ~ ' where is_active) as scope_edges', 'identifiers': none} -%}
    {%- if existing_relation is none or should_full_refresh() -%}
        {{ return(full) }}
    {%- endif -%}

    {%- set other_rules = identity__scalar(
        'select count(*) from (select 1 from ' ~ existing_relation ~ ' where rules_fingerprint <> \''
        ~ identity__rules_fingerprint() ~ '\' ' ~ identity__limit(1) ~ ') as stored'
    ) -%}
    {%- if other_rules > 0 -%}
        {{ log('identity resolution: limits, priority or maximum size changed since the last run; resolving everything', info=True) }}
        {{ return(full) }}
    {%- endif -%}

    {%- set watermark_table = identity__temp_table('watermark',
        'select max(resolved_at) as resolved_through from ' ~ existing_relation
    ) -%}
    {%- set watermark = '(select resolved_through from ' ~ watermark_table ~ ')' -%}
    {%- set has_old_edges = identity__scalar(
        'select case when exists (select 1 from ' ~ edges ~ ' where is_active and changed_at <= '
        ~ watermark ~ ') then 1 else 0 end'
    ) -%}
    {%- if has_old_edges == 0 -%}
        {{ return(full) }}
    {%- endif -%}

    {#- an edge only seen again (its structure unchanged) matters only where a limit rule
        split the component (link order decides the cut); elsewhere its identifiers' seen
        times are updated after the write (identity__update_seen_times) -#}
    {%- set structure_changed = 'coalesce(structure_changed_at, changed_at) > ' ~ watermark -%}
    {%- set changed_keys = identity__temp_table('changed_keys', '
        with changed as (
            select left_identifier_type, left_identifier_value, right_identifier_type, right_identifier_value,
                ' ~ structure_changed ~ ' as structure_changed
            from ' ~ edges ~ ' where changed_at > ' ~ watermark ~ '
        ),
        relevant as (
            select * from changed
            where structure_changed
                or not exists (
                    select 1 from ' ~ existing_relation ~ ' as previous
                    where previous.identifier_key = ' ~ identity__key('changed.left_identifier_type', 'changed.left_identifier_value') ~ '
                        and not coalesce(previous.limit_applied, true))
                or not exists (
                    select 1 from ' ~ existing_relation ~ ' as previous
                    where previous.identifier_key = ' ~ identity__key('changed.right_identifier_type', 'changed.right_identifier_value') ~ '
                        and not coalesce(previous.limit_applied, true))
        )
        select left_identifier_type as identifier_type, left_identifier_value as identifier_value
        from relevant
        union
        select right_identifier_type, right_identifier_value
        from relevant',
        analyze=true
    ) -%}
    {%- set seen_again = '
        select ' ~ identity__key('left_identifier_type', 'left_identifier_value') ~ ' as identifier_key, last_seen_at
        from ' ~ edges ~ '
        where changed_at > ' ~ watermark ~ ' and is_self_edge and is_active and not ' ~ structure_changed -%}

    {%- set keys = identity__temp_table('scope_keys', '
        with touched_profiles as (
            select distinct previous.profile_id
            from ' ~ existing_relation ~ ' as previous
            inner join ' ~ changed_keys ~ ' as changed
                on previous.identifier_key = ' ~ identity__key('changed.identifier_type', 'changed.identifier_value') ~ '
        )
        select identifier_type, identifier_value, ' ~ identity__key('identifier_type', 'identifier_value') ~ ' as identifier_key
        from ' ~ changed_keys ~ '
        union
        select identifier_type, identifier_value, identifier_key
        from ' ~ existing_relation ~ '
        where profile_id in (select profile_id from touched_profiles)',
        analyze=true
    ) -%}

    {#- close the set: profiles split from a scope profile by a limit rule are still linked
        to it, so they join the scope too (repeated until no edge leaves it). Each round
        keeps the active edges touching the set; the round that adds nothing leaves the
        scope's edges, so they are not looked up once more. -#}
    {%- set closure = namespace(converged=false) -%}
    {%- for step in range(50) -%}
        {%- set closure.edges = identity__temp_table('scope_edges', '
            with ' ~ identity__edges_touching(edges, keys) ~ '
            select * from touching',
            analyze=true
        ) -%}
        {%- set added = identity__execute('identity_close_scope', '
            insert into ' ~ keys ~ ' (identifier_type, identifier_value, identifier_key)
            with outside as (
                select left_identifier_type as identifier_type, left_identifier_value as identifier_value
                from ' ~ closure.edges ~ '
                union
                select right_identifier_type, right_identifier_value
                from ' ~ closure.edges ~ '
            ),
            outside_keys as (
                select outside.identifier_type, outside.identifier_value,
                    ' ~ identity__key('outside.identifier_type', 'outside.identifier_value') ~ ' as identifier_key
                from outside
                where not exists (
                    select 1 from ' ~ keys ~ ' as scope_keys
                    where scope_keys.identifier_type = outside.identifier_type
                        and scope_keys.identifier_value = outside.identifier_value)
            )
            select identifier_type, identifier_value, identifier_key
            from outside_keys
            union
            select previous.identifier_type, previous.identifier_value, previous.identifier_key
            from ' ~ existing_relation ~ ' as previous
            where previous.profile_id in (
                select profile_id from ' ~ existing_relation ~ '
                where identifier_key in (select identifier_key from outside_keys))
                and previous.identifier_key not in (select identifier_key from ' ~ keys ~ ')'
        ) -%}
        {%- if added == 0 -%}
            {%- set closure.converged = true -%}
            {%- break -%}
        {%- endif -%}
    {%- endfor -%}
    {% do identity__analyze(keys) %}
    {%- if not closure.converged -%}
        {{ log('identity resolution: the incremental scope did not close in 50 rounds; resolving everything', info=True) }}
        {{ return(full) }}
    {%- endif -%}
    {%- set scope_edges = closure.edges -%}

    {%- set leaking = identity__scalar('
        select count(*)
        from ' ~ scope_edges ~ ' as scope_edges
        where not exists (
                select 1 from ' ~ keys ~ ' as scope_keys
                where scope_keys.identifier_type = scope_edges.left_identifier_type
                    and scope_keys.identifier_value = scope_edges.left_identifier_value)
            or not exists (
                select 1 from ' ~ keys ~ ' as scope_keys
                where scope_keys.identifier_type = scope_edges.right_identifier_type
                    and scope_keys.identifier_value = scope_edges.right_identifier_value)'
    ) -%}
    {%- if leaking > 0 -%}
        {{ log('identity resolution: ' ~ leaking ~ ' edges leave the incremental scope; resolving everything', info=True) }}
        {{ return(full) }}
    {%- endif -%}

    {{ return({'mode': 'incremental', 'edges': scope_edges ~ ' as scope_edges', 'identifiers': keys, 'seen_again': seen_again}) }}

{%- endmacro %}


{#- CTE `touching`: active edges with at least one end in `keys`. -#}
{% macro identity__edges_touching(edges, keys) -%}
    touching as (
        select identity_edges.*
        from {{ edges }}
        inner join {{ keys }} as scope_keys
            on identity_edges.left_identifier_type = scope_keys.identifier_type
            and identity_edges.left_identifier_value = scope_keys.identifier_value
        where identity_edges.is_active
        union
        select identity_edges.*
        from {{ edges }}
        inner join {{ keys }} as scope_keys
            on identity_edges.right_identifier_type = scope_keys.identifier_type
            and identity_edges.right_identifier_value = scope_keys.identifier_value
        where identity_edges.is_active
    )
{%- endmacro %}

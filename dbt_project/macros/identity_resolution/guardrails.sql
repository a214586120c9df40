{#-
    Per component: size, survivor_order (identity_time_key(first_seen_at) followed by the
    identifier_key: its minimum names the survivor), the survivor and profile id derived
    from it (see identity__survivors) and how many identifiers of each limited type
    (var('identity_limits')) it holds, as limited_1, limited_2, ...
-#}
{% macro identity__component_stats_sql(assigned, where='1 = 1') -%}
    {%- set survivor_key = identity_after_time_key('survivor_order') -%}
    select
        grouped.*,
        {{ profile_id_of_key(survivor_key) }} as profile_id,
        {{ dbt.split_part(survivor_key, "':'", 1) }} as survivor_identifier_type,
        {{ identity__key_value(survivor_key) }} as survivor_identifier_value
    from (
        select
            component,
            count(*) as cluster_size,
            min({{ dbt.concat([identity_time_key('first_seen_at'), 'identifier_key']) }}) as survivor_order
            {%- for identifier_type in var('identity_limits', {}) %},
            sum(case when identifier_type = '{{ identifier_type }}' then 1 else 0 end) as limited_{{ loop.index }}
            {%- endfor %}
        from {{ assigned }}
        where {{ where }}
        group by component
    ) as grouped
{%- endmacro %}

{% macro identity__component_stats(assigned) -%}
    {{ return(identity__temp_table('stats', identity__component_stats_sql(assigned), analyze=true)) }}
{%- endmacro %}


{#- SQL expression: position of an identifier type in var('identity_priority') (0 = strongest). -#}
{% macro identity__priority(type_column) -%}
    {%- set priority = var('identity_priority') -%}
    case {{ type_column }}
        {%- for identifier_type in priority %}
        when '{{ identifier_type }}' then {{ loop.index0 }}
        {%- endfor %}
        else {{ priority | length }}
    end
{%- endmacro %}


{#-
    Limit rules. var('identity_limits') caps how many identifiers of a type one profile may
    hold (e.g. {user_id: 1}: never two accounts in one profile). A component over a cap is
    rebuilt greedily, strongest link first, skipping every link that would break a cap:
    that link is the weaker one and is cut. Link strength, strongest first:
      1. the weaker end's position in var('identity_priority')
      2. the stronger end's position
      3. times_seen, most first
      4. first_seen_at, oldest first
      5. the link's identifier keys (a stable tie-break)
    so the result does not depend on the order rows are read in. Only the components over
    a cap are rebuilt: `stats` gets their new components in place, and the returned
    `rebuilt` relation (node_id, component) overrides `assigned` for their identifiers.
    Returns {split: number of components split, rebuilt: relation or none}.
-#}
{% macro identity__apply_limits(assigned, stats, links) -%}
    {%- set limits = var('identity_limits', {}) -%}
    {%- set nothing = {'split': 0, 'rebuilt': none} -%}
    {%- if limits | length == 0 -%}{{ return(nothing) }}{%- endif -%}

    {%- set over_caps = [] -%}
    {%- for identifier_type, cap in limits.items() -%}
        {%- do over_caps.append('limited_' ~ loop.index ~ ' > ' ~ cap) -%}
    {%- endfor -%}
    {%- set conflicting = identity__temp_table('conflicting',
        'select component from ' ~ stats ~ ' where ' ~ over_caps | join(' or ')
    ) -%}
    {%- set conflict_count = identity__scalar('select count(*) from ' ~ conflicting) -%}
    {%- if conflict_count == 0 -%}{{ return(nothing) }}{%- endif -%}

    {%- set limited_type -%}
        case assigned.identifier_type
            {%- for identifier_type in limits %}
            when '{{ identifier_type }}' then {{ loop.index }}
            {%- endfor %}
            else 0
        end
    {%- endset -%}
    {%- set limit_nodes = identity__temp_table('limit_nodes', '
        select
            row_number() over (order by assigned.node_id) as local_id,
            assigned.node_id,
            assigned.identifier_key,
            assigned.identifier_type,
            assigned.first_seen_at,
            ' ~ limited_type ~ ' as limited_type
        from ' ~ assigned ~ ' as assigned
        inner join ' ~ conflicting ~ ' as conflicting on conflicting.component = assigned.component',
        analyze=true
    ) -%}
    {%- set left_priority = identity__priority('left_node.identifier_type') -%}
    {%- set right_priority = identity__priority('right_node.identifier_type') -%}
    {%- set limit_links = identity__temp_table('limit_links', '
        select
            left_node.local_id as a,
            right_node.local_id as b,
            row_number() over (
                order by
                    case when ' ~ left_priority ~ ' > ' ~ right_priority ~ ' then ' ~ left_priority ~ ' else ' ~ right_priority ~ ' end,
                    case when ' ~ left_priority ~ ' < ' ~ right_priority ~ ' then ' ~ left_priority ~ ' else ' ~ right_priority ~ ' end,
                    links.times_seen desc,
                    links.first_seen_at,
                    case when left_node.identifier_key < right_node.identifier_key then left_node.identifier_key else right_node.identifier_key end,
                    case when left_node.identifier_key < right_node.identifier_key then right_node.identifier_key else left_node.identifier_key end
            ) as link_rank
        from ' ~ links ~ ' as links
        inner join ' ~ limit_nodes ~ ' as left_node on left_node.node_id = links.a
        inner join ' ~ limit_nodes ~ ' as right_node on right_node.node_id = links.b'
    ) -%}
    {%- set rebuilt = identity__temp_table('limit_components',
        'select node_id, component from ' ~ assigned ~ ' where 1 = 0') -%}
    {% do identity__greedy_components(limit_nodes, limit_links, rebuilt, limits.values() | list) %}
    {% do identity__analyze(rebuilt) %}

    {% do identity__execute('identity_limit_stats_delete',
        'delete from ' ~ stats ~ ' where component in (select component from ' ~ conflicting ~ ')'
    ) %}
    {% do identity__execute('identity_limit_stats_insert',
        'insert into ' ~ stats ~ ' ' ~ identity__component_stats_sql(
            '(select limit_nodes.*, rebuilt.component from ' ~ limit_nodes ~ ' as limit_nodes'
            ~ ' inner join ' ~ rebuilt ~ ' as rebuilt on rebuilt.node_id = limit_nodes.node_id)'
            ~ ' as rebuilt_nodes')
    ) %}
    {{ return({'split': conflict_count, 'rebuilt': rebuilt}) }}
{%- endmacro %}


{#- `assigned` with the components rebuilt by the limit rules (limit_applied), as a subquery. -#}
{% macro identity__components(assigned, rebuilt) -%}
    {%- if rebuilt is none -%}
        {{ return('(select assigned.*, false as limit_applied from ' ~ assigned ~ ' as assigned)') }}
    {%- endif -%}
    {{ return('(
        select
            assigned.node_id,
            assigned.identifier_key,
            assigned.identifier_type,
            assigned.identifier_value,
            assigned.first_seen_at,
            assigned.last_seen_at,
            coalesce(rebuilt.component, assigned.component) as component,
            rebuilt.node_id is not null as limit_applied
        from ' ~ assigned ~ ' as assigned
        left join ' ~ rebuilt ~ ' as rebuilt on rebuilt.node_id = assigned.node_id
    )') }}
{%- endmacro %}


{#-
    The greedy rebuild itself: a union-find over `limit_links` in link_rank order, where a
    set carries its count of identifiers per limited type and a union that would take a
    count above its cap is skipped. Fills `rebuilt` (node_id, component) with one node_id
    of each resulting set as its component. This is sequential by nature, so it runs
    inside the warehouse as a procedural block.
-#}
{% macro identity__greedy_components(limit_nodes, limit_links, rebuilt, caps) -%}
    {{ return(adapter.dispatch('identity__greedy_components', 'journeyflow')(limit_nodes, limit_links, rebuilt, caps)) }}
{%- endmacro %}

{% macro default__identity__greedy_components(limit_nodes, limit_links, rebuilt, caps) -%}
    {{ exceptions.raise_not_implemented(
        'identity limit rules need a procedural step that is only written for PostgreSQL;'
        ~ ' implement ' ~ adapter.type() ~ '__identity__greedy_components or set var identity_limits: {}') }}
{%- endmacro %}

{% macro postgres__identity__greedy_components(limit_nodes, limit_links, rebuilt, caps) -%}
    {% call statement('identity_greedy') -%}
    do $identity$
    declare
        node_count integer := (select count(*) from {{ limit_nodes }});
        type_count integer := {{ caps | length }};
        caps integer[] := array[{{ caps | join(', ') }}];
        parent integer[];
        counts integer[];
        item record;
        root_a integer;
        root_b integer;
        fits boolean;
    begin
        parent := array(select generate_series(1, node_count));
        counts := array_fill(0, array[node_count * type_count]);
        for item in select local_id, limited_type from {{ limit_nodes }} where limited_type > 0 loop
            counts[(item.local_id - 1) * type_count + item.limited_type] := 1;
        end loop;

        for item in select a, b from {{ limit_links }} order by link_rank loop
            root_a := item.a;
            while parent[root_a] <> root_a loop
                parent[root_a] := parent[parent[root_a]];
                root_a := parent[root_a];
            end loop;
            root_b := item.b;
            while parent[root_b] <> root_b loop
                parent[root_b] := parent[parent[root_b]];
                root_b := parent[root_b];
            end loop;
            continue when root_a = root_b;

            fits := true;
            for t in 1..type_count loop
                if counts[(root_a - 1) * type_count + t] + counts[(root_b - 1) * type_count + t] > caps[t] then
                    fits := false;
                    exit;
                end if;
            end loop;
            continue when not fits;

            parent[root_b] := root_a;
            for t in 1..type_count loop
                counts[(root_a - 1) * type_count + t] :=
                    counts[(root_a - 1) * type_count + t] + counts[(root_b - 1) * type_count + t];
            end loop;
        end loop;

        for i in 1..node_count loop
            root_a := i;
            while parent[root_a] <> root_a loop
                root_a := parent[root_a];
            end loop;
            parent[i] := root_a;
        end loop;

        insert into {{ rebuilt }} (node_id, component)
        select member.node_id, root.node_id
        from unnest(parent) with ordinality as sets (root_local_id, local_id)
        inner join {{ limit_nodes }} as member on member.local_id = sets.local_id
        inner join {{ limit_nodes }} as root on root.local_id = sets.root_local_id;
    end
    $identity$
    {%- endcall %}
{%- endmacro %}


{#-
    Maximum cluster size: a component holding more identifiers than var('max_cluster_size')
    is almost always a junk value shared by many people (a kiosk device, a placeholder
    e-mail). Merging them silently would corrupt every downstream table, so the run stops
    with an error naming the cluster, its size and its most linked identifiers.
-#}
{% macro identity__check_cluster_sizes(components, stats, scope_edges) -%}
    {%- set max_size = var('max_cluster_size') -%}
    {%- set oversized = run_query('
        select component, cluster_size
        from ' ~ stats ~ '
        where cluster_size > ' ~ max_size ~ '
        order by cluster_size desc, component
        ' ~ identity__limit(5)
    ) -%}
    {%- if oversized.rows | length == 0 -%}{{ return(none) }}{%- endif -%}

    {%- set lines = [] -%}
    {%- for cluster in oversized.rows -%}
        {%- set survivor_key = run_query(
            'select survivor_order from ' ~ stats ~ ' where component = ' ~ cluster[0]
        ).rows[0][0][20:] -%}
        {%- set hubs = run_query('
            with members as (
                select identifier_key from ' ~ components ~ ' as components where component = ' ~ cluster[0] ~ '
            ),
            ends as (
                select ' ~ identity__key('left_identifier_type', 'left_identifier_value') ~ ' as identifier_key
                from ' ~ scope_edges ~ ' where not is_self_edge
                union all
                select ' ~ identity__key('right_identifier_type', 'right_identifier_value') ~ '
                from ' ~ scope_edges ~ ' where not is_self_edge
            )
            select ends.identifier_key, count(*) as links
            from ends
            inner join members on members.identifier_key = ends.identifier_key
            group by ends.identifier_key
            order by links desc, ends.identifier_key
            ' ~ identity__limit(3)
        ) -%}
        {%- set hub_text = [] -%}
        {%- for hub in hubs.rows -%}{%- do hub_text.append(hub[0] ~ ' (' ~ hub[1] ~ ' links)') -%}{%- endfor -%}
        {%- do lines.append(
            '  profile ' ~ identity__profile_id_value(survivor_key) ~ ' (survivor '
            ~ survivor_key ~ '): ' ~ cluster[1] ~ ' identifiers; most linked: '
            ~ hub_text | join(', ')
        ) -%}
    {%- endfor -%}
    {{ exceptions.raise_database_error(
        'identity cluster too large: ' ~ oversized.rows | length ~ ' cluster(s) hold more than '
        ~ max_size ~ " identifiers (var 'max_cluster_size'). Likely a shared junk identifier:"
        ~ " add it to var 'identity_blocklist', or raise the limit if the cluster is real.\n"
        ~ lines | join('\n')
    ) }}
{%- endmacro %}


{#- `limit n` clause (dispatched for adapters that spell it differently). -#}
{% macro identity__limit(n) -%}
    {{ return(adapter.dispatch('identity__limit', 'journeyflow')(n)) }}
{%- endmacro %}

{% macro default__identity__limit(n) -%}
    limit {{ n }}
{%- endmacro %}


{#- The profile id of a survivor, computed in Jinja for messages (same as macro profile_id). -#}
{% macro identity__profile_id_value(identifier_key) -%}
    {{ return('p_' ~ local_md5(identifier_key)[:16]) }}
{%- endmacro %}

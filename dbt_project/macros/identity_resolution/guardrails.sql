{#- Every node of the scope with its component (the label, or itself when it is a root). -#}
{% macro identity__assign_components(nodes, labels) -%}
    {{ return(identity__temp_table('assigned', '
        select nodes.*, coalesce(labels.label, nodes.node_id) as component
        from ' ~ nodes ~ ' as nodes
        left join ' ~ labels ~ ' as labels on labels.node_id = nodes.node_id'
    )) }}
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
    hold (e.g. {user_id: 1}: never two accounts in one profile). Components over a cap are
    rebuilt greedily, strongest link first, skipping every link that would break a cap:
    that link is the weaker one and is cut. Link strength, strongest first:
      1. the weaker end's position in var('identity_priority')
      2. the stronger end's position
      3. times_seen, most first
      4. first_seen_at, oldest first
      5. edge_id (a stable tie-break)
    so the result does not depend on the order rows are read in. Only the few components
    over a cap are fetched and rebuilt; `assigned` gets their new components in place.
    Returns the number of components that were split.
-#}
{% macro identity__apply_limits(assigned, scope_edges) -%}
    {%- set limits = var('identity_limits', {}) -%}
    {%- if limits | length == 0 -%}{{ return(0) }}{%- endif -%}

    {%- set conflicting = identity__temp_table('conflicting', '
        select component
        from ' ~ assigned ~ '
        group by component
        having ' ~ identity__over_limits_sql(limits)
    ) -%}
    {%- set conflict_count = identity__scalar('select count(*) from ' ~ conflicting) -%}
    {%- if conflict_count == 0 -%}{{ return(0) }}{%- endif -%}

    {%- set members = run_query('
        select assigned.node_id, assigned.identifier_type
        from ' ~ assigned ~ ' as assigned
        inner join ' ~ conflicting ~ ' as conflicting on conflicting.component = assigned.component'
    ) -%}
    {%- set ranked_links = run_query('
        with member_nodes as (
            select assigned.node_id, assigned.identifier_key, assigned.identifier_type
            from ' ~ assigned ~ ' as assigned
            inner join ' ~ conflicting ~ ' as conflicting on conflicting.component = assigned.component
        ),
        member_edges as (
            select
                left_node.node_id as left_node_id,
                right_node.node_id as right_node_id,
                ' ~ identity__priority('left_node.identifier_type') ~ ' as left_priority,
                ' ~ identity__priority('right_node.identifier_type') ~ ' as right_priority,
                scope_edges.times_seen,
                scope_edges.first_seen_at,
                scope_edges.edge_id
            from ' ~ scope_edges ~ '
            inner join member_nodes as left_node
                on left_node.identifier_key = ' ~ identity__key('scope_edges.left_identifier_type', 'scope_edges.left_identifier_value') ~ '
            inner join member_nodes as right_node
                on right_node.identifier_key = ' ~ identity__key('scope_edges.right_identifier_type', 'scope_edges.right_identifier_value') ~ '
            where not scope_edges.is_self_edge
        )
        select left_node_id, right_node_id
        from member_edges
        order by
            case when left_priority > right_priority then left_priority else right_priority end,
            case when left_priority < right_priority then left_priority else right_priority end,
            times_seen desc,
            first_seen_at,
            edge_id'
    ) -%}

    {#- greedy union-find over the ranked links; sets carry their count per limited type -#}
    {%- set parent = {} -%}
    {%- set counts = {} -%}
    {%- for row in members.rows -%}
        {%- do parent.update({row[0]: row[0]}) -%}
        {%- do counts.update({row[0]: {row[1]: 1} if row[1] in limits else {}}) -%}
    {%- endfor -%}
    {%- for link in ranked_links.rows -%}
        {%- set root_a = identity__find(parent, link[0]) -%}
        {%- set root_b = identity__find(parent, link[1]) -%}
        {%- if root_a != root_b -%}
            {%- set fits = namespace(value=true) -%}
            {%- for identifier_type, cap in limits.items() -%}
                {%- if counts[root_a].get(identifier_type, 0) + counts[root_b].get(identifier_type, 0) > cap -%}
                    {%- set fits.value = false -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if fits.value -%}
                {%- set kept = [root_a, root_b] | min -%}
                {%- set joined = [root_a, root_b] | max -%}
                {%- do parent.update({joined: kept}) -%}
                {%- for identifier_type, count in counts[joined].items() -%}
                    {%- do counts[kept].update({identifier_type: counts[kept].get(identifier_type, 0) + count}) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}

    {%- set rebuilt = [] -%}
    {%- for node_id in parent -%}
        {%- do rebuilt.append('(' ~ node_id ~ ', ' ~ identity__find(parent, node_id) ~ ')') -%}
    {%- endfor -%}
    {%- set rebuilt_components = identity__temp_table('limit_components',
        'select node_id, component from ' ~ assigned ~ ' where 1 = 0') -%}
    {%- for batch in rebuilt | batch(1000) -%}
        {% do run_query('insert into ' ~ rebuilt_components ~ ' (node_id, component) values ' ~ batch | join(', ')) %}
    {%- endfor -%}
    {% do identity__analyze(rebuilt_components) %}
    {% do identity__execute('identity_limit_update', '
        update ' ~ assigned ~ ' set component = rebuilt.component
        from ' ~ rebuilt_components ~ ' as rebuilt
        where rebuilt.node_id = ' ~ assigned ~ '.node_id'
    ) %}
    {{ return(conflict_count) }}
{%- endmacro %}


{#- SQL condition over a component group: some limited type is above its cap. -#}
{% macro identity__over_limits_sql(limits) -%}
    {%- for identifier_type, cap in limits.items() -%}
        sum(case when identifier_type = '{{ identifier_type }}' then 1 else 0 end) > {{ cap }}
        {{- " or " if not loop.last }}
    {% endfor -%}
{%- endmacro %}


{#- Root of `node` in the union-find `parent` map, halving the path on the way. -#}
{% macro identity__find(parent, node) -%}
    {%- set walk = namespace(node=node) -%}
    {%- for step in range(parent | length) -%}
        {%- if parent[walk.node] == walk.node -%}{%- break -%}{%- endif -%}
        {%- do parent.update({walk.node: parent[parent[walk.node]]}) -%}
        {%- set walk.node = parent[walk.node] -%}
    {%- endfor -%}
    {{ return(walk.node) }}
{%- endmacro %}


{#-
    Maximum cluster size: a component holding more identifiers than var('max_cluster_size')
    is almost always a junk value shared by many people (a kiosk device, a placeholder
    e-mail). Merging them silently would corrupt every downstream table, so the run stops
    with an error naming the cluster, its size and its most linked identifiers.
-#}
{% macro identity__check_cluster_sizes(assigned, scope_edges) -%}
    {%- set max_size = var('max_cluster_size') -%}
    {%- set oversized = run_query('
        select component, count(*) as identifiers
        from ' ~ assigned ~ '
        group by component
        having count(*) > ' ~ max_size ~ '
        order by identifiers desc, component
        ' ~ identity__limit(5)
    ) -%}
    {%- if oversized.rows | length == 0 -%}{{ return(none) }}{%- endif -%}

    {%- set lines = [] -%}
    {%- for cluster in oversized.rows -%}
        {%- set survivor = run_query('
            select identifier_type, identifier_value
            from ' ~ assigned ~ '
            where component = ' ~ cluster[0] ~ '
            order by first_seen_at, identifier_type, identifier_value
            ' ~ identity__limit(1)
        ).rows[0] -%}
        {%- set hubs = run_query('
            with members as (
                select identifier_key from ' ~ assigned ~ ' where component = ' ~ cluster[0] ~ '
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
            '  profile ' ~ identity__profile_id_value(survivor[0], survivor[1]) ~ ' (survivor '
            ~ survivor[0] ~ ':' ~ survivor[1] ~ '): ' ~ cluster[1] ~ ' identifiers; most linked: '
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
{% macro identity__profile_id_value(identifier_type, identifier_value) -%}
    {{ return('p_' ~ local_md5(identifier_type ~ ':' ~ identifier_value)[:16]) }}
{%- endmacro %}

{#-
    Connected components of `links` (a, b; a < b), looped until no edge is left.

    Each round:
      hook      every node points at its smallest neighbour when that one is smaller
                (a forest: parents only decrease; a node with no smaller neighbour is a root)
      jump      parent := parent's parent until every node points at a root
      contract  each link becomes (root(a), root(b)); links inside one tree disappear
    Roots are never neighbours of a smaller node, so every round removes at least every
    non-root, and most components are done after one round. The rounds run until the
    contracted graph has no edge, so no pass count needs tuning; the round limit below is
    only a guard against a bug and is far above what any real graph needs.

    Returns a relation (node_id, label) for every node that is not its own label; the label
    is the smallest node_id of its component. It is analyzed: the next statement joins it
    to every identifier, and without statistics the planner sorts both sides instead of
    hashing the labels.
-#}
{% macro identity__connected_components(links, max_rounds=200) -%}

    {%- set started = modules.datetime.datetime.now() -%}
    {%- set state = namespace(edges=links, hooks=[], converged=false) -%}
    {%- for round in range(1, max_rounds + 1) -%}
        {%- if identity__scalar('select count(*) from ' ~ state.edges) == 0 -%}
            {%- set state.converged = true -%}
            {%- break -%}
        {%- endif -%}

        {%- set hook = identity__temp_table('hook_' ~ round,
            'select b as node_id, min(a) as parent, 0 as jumps from ' ~ state.edges ~ ' group by b',
            analyze=true
        ) -%}
        {#- only nodes moved by the previous jump can still point below a root -#}
        {%- for jump in range(1, max_rounds + 1) -%}
            {%- set moved = identity__execute('identity_jump', '
                update ' ~ hook ~ ' set parent = up.parent, jumps = ' ~ jump ~ '
                from ' ~ hook ~ ' as up
                where up.node_id = ' ~ hook ~ '.parent
                    and ' ~ hook ~ '.jumps = ' ~ (jump - 1)
            ) -%}
            {%- if moved == 0 -%}{%- break -%}{%- endif -%}
        {%- endfor -%}

        {%- set contracted = identity__temp_table('edges_' ~ round, '
            select distinct
                case when root_a < root_b then root_a else root_b end as a,
                case when root_a < root_b then root_b else root_a end as b
            from (
                select
                    coalesce(hook_a.parent, edges.a) as root_a,
                    coalesce(hook_b.parent, edges.b) as root_b
                from ' ~ state.edges ~ ' as edges
                left join ' ~ hook ~ ' as hook_a on hook_a.node_id = edges.a
                left join ' ~ hook ~ ' as hook_b on hook_b.node_id = edges.b
            ) as mapped
            where root_a <> root_b'
        ) -%}
        {%- if state.edges != links -%}{% do adapter.drop_relation(state.edges) %}{%- endif -%}
        {%- do state.hooks.append(hook) -%}
        {%- set state.edges = contracted -%}
    {%- endfor -%}

    {%- if not state.converged -%}
        {{ exceptions.raise_compiler_error(
            'identity resolution did not converge in ' ~ max_rounds ~ ' rounds') }}
    {%- endif -%}

    {%- if state.hooks | length == 0 -%}
        {{ return(identity__temp_table('labels', 'select a as node_id, a as label from ' ~ links ~ ' where 1 = 0')) }}
    {%- endif -%}

    {#- compose the rounds, last to first: a node's label is its root's label in later rounds -#}
    {%- set composed = namespace(labels=none) -%}
    {%- for hook in state.hooks | reverse -%}
        {%- if composed.labels is none -%}
            {%- set composed.labels = identity__temp_table('labels_' ~ loop.index,
                'select node_id, parent as label from ' ~ hook, analyze=loop.last) -%}
        {%- else -%}
            {%- set composed.labels = identity__temp_table('labels_' ~ loop.index, '
                select hook.node_id, coalesce(later.label, hook.parent) as label
                from ' ~ hook ~ ' as hook
                left join ' ~ composed.labels ~ ' as later on later.node_id = hook.parent
                union all
                select node_id, label from ' ~ composed.labels,
                analyze=loop.last
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ log(
        'identity resolution: connected components converged after ' ~ state.hooks | length
        ~ ' rounds in ' ~ '%.2f' | format((modules.datetime.datetime.now() - started).total_seconds()) ~ ' s',
        info=True
    ) }}
    {{ return(composed.labels) }}

{%- endmacro %}

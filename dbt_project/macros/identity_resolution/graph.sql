{#-
    The scope as integers. `identity__links` gives one row (a, b), a < b, per non-self
    edge (with its times_seen and first_seen_at, for the limit rules); `identity__assign` then gives every identifier (one per self-edge) its numeric
    node_id and component.

    Every identifier on a pair edge also has its self-edge (int_identity_edges emits both
    from the same record and drops blocklisted values from both), so the self-edges are
    exactly the nodes.
-#}
{% macro identity__node_ids(scope) -%}
    {{ return(adapter.dispatch('identity__node_ids', 'journeyflow')(scope)) }}
{%- endmacro %}


{#- Portable: identifiers numbered by row_number() (links are mapped through a join). -#}
{% macro default__identity__node_ids(scope) -%}
    {{ return(identity__temp_table('node_ids', '
        select
            row_number() over (order by left_identifier_type, left_identifier_value) as node_id,
            left_identifier_type as identifier_type,
            left_identifier_value as identifier_value
        from ' ~ scope.edges ~ '
        where is_self_edge'
    )) }}
{%- endmacro %}


{#-
    PostgreSQL: node_id is a 64-bit hash of the identifier key, computed where it is needed
    (no table, no join). identity__assign checks that no two identifiers share a hash.
-#}
{% macro postgres__identity__node_ids(scope) -%}
    {{ return(none) }}
{%- endmacro %}


{% macro identity__hashed_node_id(type_column, value_column) -%}
    hashtextextended({{ identity__key(type_column, value_column) }}, 0)
{%- endmacro %}


{% macro identity__links(scope, node_ids) -%}
    {%- if node_ids is none -%}
        {{ return(identity__temp_table('links', '
            select
                least(left_id, right_id) as a,
                greatest(left_id, right_id) as b,
                times_seen,
                first_seen_at
            from (
                select
                    ' ~ identity__hashed_node_id('left_identifier_type', 'left_identifier_value') ~ ' as left_id,
                    ' ~ identity__hashed_node_id('right_identifier_type', 'right_identifier_value') ~ ' as right_id,
                    times_seen,
                    first_seen_at
                from ' ~ scope.edges ~ '
                where not is_self_edge
            ) as hashed'
        )) }}
    {%- endif -%}
    {{ return(identity__temp_table('links', '
        select
            case when left_node.node_id < right_node.node_id then left_node.node_id else right_node.node_id end as a,
            case when left_node.node_id < right_node.node_id then right_node.node_id else left_node.node_id end as b,
            scope_edges.times_seen,
            scope_edges.first_seen_at
        from ' ~ scope.edges ~ '
        inner join ' ~ node_ids ~ ' as left_node
            on left_node.identifier_type = scope_edges.left_identifier_type
            and left_node.identifier_value = scope_edges.left_identifier_value
        inner join ' ~ node_ids ~ ' as right_node
            on right_node.identifier_type = scope_edges.right_identifier_type
            and right_node.identifier_value = scope_edges.right_identifier_value
        where not scope_edges.is_self_edge'
    )) }}
{%- endmacro %}


{#-
    Every identifier of the scope with its node_id and component (its label, or itself when
    it is a root). Returns none when two identifiers share a hashed node_id: the caller then
    numbers the nodes instead.
-#}
{% macro identity__assign(scope, node_ids, labels) -%}
    {%- if node_ids is none -%}
        {%- set node_id = identity__hashed_node_id('left_identifier_type', 'left_identifier_value') -%}
        {%- set nodes = '(select ' ~ node_id ~ ' as node_id, scope_edges.* from ' ~ scope.edges ~ ' where is_self_edge) as nodes' -%}
    {%- else -%}
        {%- set nodes = '(select node_ids.node_id, scope_edges.* from ' ~ scope.edges ~ '
            inner join ' ~ node_ids ~ ' as node_ids
                on node_ids.identifier_type = scope_edges.left_identifier_type
                and node_ids.identifier_value = scope_edges.left_identifier_value
            where scope_edges.is_self_edge) as nodes' -%}
    {%- endif -%}
    {%- set assigned = identity__temp_table('assigned', '
        select
            nodes.node_id,
            ' ~ identity__key('nodes.left_identifier_type', 'nodes.left_identifier_value') ~ ' as identifier_key,
            nodes.left_identifier_type as identifier_type,
            nodes.left_identifier_value as identifier_value,
            nodes.first_seen_at,
            nodes.last_seen_at,
            coalesce(labels.label, nodes.node_id) as component
        from ' ~ nodes ~ '
        left join ' ~ labels ~ ' as labels on labels.node_id = nodes.node_id',
        analyze=true
    ) -%}
    {%- if node_ids is none and identity__scalar('select count(*) - count(distinct node_id) from ' ~ assigned) > 0 -%}
        {{ log('identity resolution: node id hash collision, numbering nodes instead', info=True) }}
        {{ return(none) }}
    {%- endif -%}
    {{ return(assigned) }}
{%- endmacro %}

{#-
    The scope as integers: `nodes` (one row per identifier, from its self-edge, with a
    numeric node_id) and `links` (a, b) with a < b, one row per non-self edge.

    Every identifier on a pair edge also has its self-edge (int_identity_edges emits both
    from the same record and drops blocklisted values from both), so the self-edges are
    exactly the nodes.
-#}
{% macro identity__graph(scope) -%}
    {{ return(adapter.dispatch('identity__graph', 'journeyflow')(scope)) }}
{%- endmacro %}


{#- Portable: node ids numbered by row_number(), links mapped through two joins. -#}
{% macro default__identity__graph(scope) -%}
    {%- set nodes = identity__temp_table('nodes', '
        select
            row_number() over (order by left_identifier_type, left_identifier_value) as node_id,
            ' ~ identity__key('left_identifier_type', 'left_identifier_value') ~ ' as identifier_key,
            left_identifier_type as identifier_type,
            left_identifier_value as identifier_value,
            first_seen_at,
            last_seen_at
        from ' ~ scope.edges ~ '
        where is_self_edge'
    ) -%}
    {%- set links = identity__temp_table('links', '
        select
            case when left_node.node_id < right_node.node_id then left_node.node_id else right_node.node_id end as a,
            case when left_node.node_id < right_node.node_id then right_node.node_id else left_node.node_id end as b
        from ' ~ scope.edges ~ '
        inner join ' ~ nodes ~ ' as left_node
            on left_node.identifier_type = scope_edges.left_identifier_type
            and left_node.identifier_value = scope_edges.left_identifier_value
        inner join ' ~ nodes ~ ' as right_node
            on right_node.identifier_type = scope_edges.right_identifier_type
            and right_node.identifier_value = scope_edges.right_identifier_value
        where not scope_edges.is_self_edge'
    ) -%}
    {{ return({'nodes': nodes, 'links': links}) }}
{%- endmacro %}


{#-
    PostgreSQL: node_id is a 64-bit hash of the identifier key, so links need no join.
    Two identifiers hashing alike would be merged silently, so collisions are checked and
    the portable numbering is used instead when there is one.
-#}
{% macro postgres__identity__graph(scope) -%}
    {%- set node_id = "hashtextextended(" ~ identity__key('left_identifier_type', 'left_identifier_value') ~ ", 0)" -%}
    {%- set nodes = identity__temp_table('nodes', '
        select
            ' ~ node_id ~ ' as node_id,
            ' ~ identity__key('left_identifier_type', 'left_identifier_value') ~ ' as identifier_key,
            left_identifier_type as identifier_type,
            left_identifier_value as identifier_value,
            first_seen_at,
            last_seen_at
        from ' ~ scope.edges ~ '
        where is_self_edge'
    ) -%}
    {%- set collisions = identity__scalar('select count(*) - count(distinct node_id) from ' ~ nodes) -%}
    {%- if collisions > 0 -%}
        {{ log('identity resolution: node id hash collision, numbering nodes instead', info=True) }}
        {{ return(default__identity__graph(scope)) }}
    {%- endif -%}
    {%- set right_id = node_id | replace('left_', 'right_') -%}
    {%- set links = identity__temp_table('links', '
        select least(left_id, right_id) as a, greatest(left_id, right_id) as b
        from (
            select ' ~ node_id ~ ' as left_id, ' ~ right_id ~ ' as right_id
            from ' ~ scope.edges ~ '
            where not is_self_edge
        ) as hashed'
    ) -%}
    {{ return({'nodes': nodes, 'links': links}) }}
{%- endmacro %}

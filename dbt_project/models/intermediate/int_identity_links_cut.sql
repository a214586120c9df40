{#-
    Links that did not merge: active edges whose two identifiers ended up in different
    profiles. Connected components would have joined them, so each one was cut by a limit
    rule (the weaker link; see the identity_resolution materialization).
-#}

with

edges as (

    select * from {{ ref('int_identity_edges') }}
    where is_active and not is_self_edge

),

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

),

final as (

    select
        edges.edge_id,
        left_side.identifier_key as left_identifier_key,
        left_side.profile_id as left_profile_id,
        right_side.identifier_key as right_identifier_key,
        right_side.profile_id as right_profile_id,
        edges.times_seen,
        edges.first_record_id
    from edges
    inner join identifiers as left_side
        on left_side.identifier_type = edges.left_identifier_type
        and left_side.identifier_value = edges.left_identifier_value
    inner join identifiers as right_side
        on right_side.identifier_type = edges.right_identifier_type
        and right_side.identifier_value = edges.right_identifier_value
    where left_side.profile_id <> right_side.profile_id

)

select * from final

{#-
    Identity resolution: every identifier is assigned the profile of its connected component
    in the identity graph (int_identity_edges). Components are found with a recursive
    reachability walk over the undirected edges; UNION (not UNION ALL) discards rows already
    found, so the walk terminates on cycles.

    The profile key comes from the component's survivor, the identifier seen first (ties
    broken by identifier type, then value):
        profile_id = 'p_' || left(md5(survivor_type || ':' || survivor_value), 16)
    so it is stable for as long as the survivor stays in the component.
-#}

with recursive

edges as (

    select * from {{ ref('int_identity_edges') }}
    -- defence in depth: the edges model already drops blocklisted values
    where not {{ is_blocklisted_identifier('left_identifier_value') }}
        and not {{ is_blocklisted_identifier('right_identifier_value') }}

),

identifier_sightings as (

    select
        left_identifier_type as identifier_type,
        left_identifier_value as identifier_value,
        first_seen_at,
        last_seen_at
    from edges

    union all

    select
        right_identifier_type,
        right_identifier_value,
        first_seen_at,
        last_seen_at
    from edges

),

identifiers as (

    select
        {{ dbt.concat(["identifier_type", "':'", "identifier_value"]) }} as identifier_key,
        identifier_type,
        identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from identifier_sightings
    group by identifier_type, identifier_value

),

links as (

    select
        {{ dbt.concat(["left_identifier_type", "':'", "left_identifier_value"]) }} as from_key,
        {{ dbt.concat(["right_identifier_type", "':'", "right_identifier_value"]) }} as to_key
    from edges
    where not is_self_edge

    union

    select
        {{ dbt.concat(["right_identifier_type", "':'", "right_identifier_value"]) }},
        {{ dbt.concat(["left_identifier_type", "':'", "left_identifier_value"]) }}
    from edges
    where not is_self_edge

),

reachable (start_key, reached_key) as (

    select identifier_key, identifier_key
    from identifiers

    union

    select reachable.start_key, links.to_key
    from reachable
    inner join links
        on links.from_key = reachable.reached_key

),

ranked as (

    select
        reachable.start_key,
        identifiers.identifier_type,
        identifiers.identifier_value,
        row_number() over (
            partition by reachable.start_key
            order by
                identifiers.first_seen_at,
                identifiers.identifier_type,
                identifiers.identifier_value
        ) as survivor_rank,
        count(*) over (partition by reachable.start_key) as cluster_size
    from reachable
    inner join identifiers
        on identifiers.identifier_key = reachable.reached_key

),

survivors as (

    select
        start_key,
        identifier_type as survivor_identifier_type,
        identifier_value as survivor_identifier_value,
        cluster_size
    from ranked
    where survivor_rank = 1

),

resolved as (

    select
        identifiers.identifier_key,
        identifiers.identifier_type,
        identifiers.identifier_value,
        {{ profile_id('survivors.survivor_identifier_type', 'survivors.survivor_identifier_value') }} as profile_id,
        survivors.survivor_identifier_type,
        survivors.survivor_identifier_value,
        survivors.cluster_size,
        identifiers.first_seen_at,
        identifiers.last_seen_at
    from identifiers
    inner join survivors
        on survivors.start_key = identifiers.identifier_key

)

select * from resolved

{#-
    Identity graph edges: one row per (undirected) pair of identifiers seen together on a
    record, plus one self-edge per identifier so that identifiers seen alone still become
    a node. Blocklisted values never produce an edge.
-#}

with

web_events as (

    select * from {{ ref('stg_web__events') }}

),

crm_contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

tickets as (

    select * from {{ ref('stg_support__tickets') }}

),

email_events as (

    select * from {{ ref('stg_sendgrid__events') }}

),

pairs as (

    -- web: identifiers seen on the same event
    select 'web' as source, occurred_at as seen_at,
        'anonymous_id' as left_type, anonymous_id as left_value,
        'user_id' as right_type, user_id as right_value
    from web_events

    union all

    select 'web', occurred_at, 'user_id', user_id, 'email', email
    from web_events

    union all

    select 'web', occurred_at, 'anonymous_id', anonymous_id, 'email', email
    from web_events

    union all

    -- crm: identifiers on the same contact
    select 'crm', updated_at, 'crm_id', crm_id, 'email', email
    from crm_contacts

    union all

    select 'crm', updated_at, 'crm_id', crm_id, 'phone', phone
    from crm_contacts

    union all

    select 'crm', updated_at, 'crm_id', crm_id, 'user_id', user_id
    from crm_contacts

    union all

    -- self-edges: every identifier occurrence, from every source
    select 'web', occurred_at, 'anonymous_id', anonymous_id, 'anonymous_id', anonymous_id
    from web_events

    union all

    select 'web', occurred_at, 'user_id', user_id, 'user_id', user_id
    from web_events

    union all

    select 'web', occurred_at, 'email', email, 'email', email
    from web_events

    union all

    select 'crm', updated_at, 'crm_id', crm_id, 'crm_id', crm_id
    from crm_contacts

    union all

    select 'crm', updated_at, 'email', email, 'email', email
    from crm_contacts

    union all

    select 'crm', updated_at, 'phone', phone, 'phone', phone
    from crm_contacts

    union all

    select 'crm', updated_at, 'user_id', user_id, 'user_id', user_id
    from crm_contacts

    union all

    select 'shop', ordered_at, 'email', customer_email, 'email', customer_email
    from orders

    union all

    select 'support', opened_at, 'email', requester_email, 'email', requester_email
    from tickets

    union all

    select 'sendgrid', occurred_at, 'email', email, 'email', email
    from email_events

),

usable as (

    select *
    from pairs
    where left_value is not null
        and right_value is not null
        and not {{ is_blocklisted_identifier('left_value') }}
        and not {{ is_blocklisted_identifier('right_value') }}

),

-- undirected: order each pair by (type, value) so a-b and b-a are the same edge
oriented as (

    select
        source,
        seen_at,
        case when swap then right_type else left_type end as left_identifier_type,
        case when swap then right_value else left_value end as left_identifier_value,
        case when swap then left_type else right_type end as right_identifier_type,
        case when swap then left_value else right_value end as right_identifier_value
    from (
        select
            usable.*,
            (
                left_type > right_type
                or (left_type = right_type and left_value > right_value)
            ) as swap
        from usable
    ) as flagged

),

per_source as (

    select
        left_identifier_type,
        left_identifier_value,
        right_identifier_type,
        right_identifier_value,
        source,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at,
        count(*) as times_seen
    from oriented
    group by 1, 2, 3, 4, 5

),

edges as (

    select
        {{ dbt.hash(dbt.concat([
            "left_identifier_type", "':'", "left_identifier_value", "'|'",
            "right_identifier_type", "':'", "right_identifier_value"
        ])) }} as edge_id,
        left_identifier_type,
        left_identifier_value,
        right_identifier_type,
        right_identifier_value,
        (
            left_identifier_type = right_identifier_type
            and left_identifier_value = right_identifier_value
        ) as is_self_edge,
        {{ dbt.listagg('source', "','", 'order by source') }} as sources,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        sum(times_seen) as times_seen
    from per_source
    group by
        left_identifier_type,
        left_identifier_value,
        right_identifier_type,
        right_identifier_value

)

select * from edges

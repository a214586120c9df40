{#-
    Identity graph edges: one row per (undirected) pair of identifiers seen together on a
    record, plus one self-edge per identifier so that identifiers seen alone still become
    a node. E-mails are matched on their identity key (identity_email); blocklisted values
    never produce an edge.

    Incremental: the edge set is recomputed from staging on every run, but only edges that
    appeared, changed (first/last seen, count, sources, first record) or disappeared are
    written, stamped with changed_at. A disappeared edge stays as a tombstone
    (is_active = false) so int_identifiers_resolved can re-resolve the profiles it held
    together.
-#}

{{ config(
    materialized='incremental',
    unique_key='edge_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['left_identifier_type', 'left_identifier_value']},
        {'columns': ['right_identifier_type', 'right_identifier_value']},
        {'columns': ['changed_at']},
    ],
) }}

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

-- every record that carries identifiers, with its identifiers in matching form
records as (

    select
        'web' as source,
        {{ dbt.concat(["'web:'", "event_id"]) }} as record_id,
        occurred_at as seen_at,
        anonymous_id,
        user_id,
        {{ identity_email('email') }} as email,
        cast(null as {{ dbt.type_string() }}) as crm_id,
        cast(null as {{ dbt.type_string() }}) as phone
    from web_events

    union all

    select
        'crm',
        {{ dbt.concat(["'crm:'", "crm_id"]) }},
        updated_at,
        null,
        user_id,
        {{ identity_email('email') }},
        crm_id,
        phone
    from crm_contacts

    union all

    select
        'shop',
        {{ dbt.concat(["'order:'", "order_id"]) }},
        ordered_at,
        null,
        null,
        {{ identity_email('customer_email') }},
        null,
        null
    from orders

    union all

    select
        'support',
        {{ dbt.concat(["'ticket:'", "ticket_id"]) }},
        opened_at,
        null,
        null,
        {{ identity_email('requester_email') }},
        null,
        null
    from tickets

    union all

    select
        'sendgrid',
        {{ dbt.concat(["'email:'", "email_event_id"]) }},
        occurred_at,
        null,
        null,
        {{ identity_email('email') }},
        null,
        null
    from email_events

),

{#- (left, right) identifier columns linked on one record; (x, x) is the self-edge -#}
{%- set linked_columns = [
    ('anonymous_id', 'user_id'), ('user_id', 'email'), ('anonymous_id', 'email'),
    ('crm_id', 'email'), ('crm_id', 'phone'), ('crm_id', 'user_id'),
    ('anonymous_id', 'anonymous_id'), ('user_id', 'user_id'), ('email', 'email'),
    ('crm_id', 'crm_id'), ('phone', 'phone'),
] %}

pairs as (

    {% for left_column, right_column in linked_columns %}
    select
        source,
        record_id,
        seen_at,
        '{{ left_column }}' as left_type,
        {{ left_column }} as left_value,
        '{{ right_column }}' as right_type,
        {{ right_column }} as right_value
    from records
    where {{ left_column }} is not null
        and {{ right_column }} is not null
        and seen_at is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

usable as (

    select *
    from pairs
    where not {{ is_blocklisted_identifier('left_value') }}
        and not {{ is_blocklisted_identifier('right_value') }}

),

-- undirected: order each pair by (type, value) so a-b and b-a are the same edge
oriented as (

    select
        source,
        record_id,
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
        count(*) as times_seen,
        {{ identity_first_by('record_id', 'seen_at, record_id') }} as first_record_id
    from oriented
    group by 1, 2, 3, 4, 5

),

current_edges as (

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
        sum(times_seen) as times_seen,
        {{ identity_first_by('first_record_id', 'first_seen_at, first_record_id') }}
            as first_record_id
    from per_source
    group by
        left_identifier_type,
        left_identifier_value,
        right_identifier_type,
        right_identifier_value

),

{% if is_incremental() %}

previous_edges as (

    select * from {{ this }}

),

changed as (

    select
        current_edges.*,
        true as is_active
    from current_edges
    left join previous_edges
        on previous_edges.edge_id = current_edges.edge_id
    where previous_edges.edge_id is null
        or not previous_edges.is_active
        or previous_edges.first_seen_at <> current_edges.first_seen_at
        or previous_edges.last_seen_at <> current_edges.last_seen_at
        or previous_edges.times_seen <> current_edges.times_seen
        or previous_edges.sources <> current_edges.sources
        or previous_edges.first_record_id <> current_edges.first_record_id

    union all

    -- tombstones: edges no record carries any more
    select
        previous_edges.edge_id,
        previous_edges.left_identifier_type,
        previous_edges.left_identifier_value,
        previous_edges.right_identifier_type,
        previous_edges.right_identifier_value,
        previous_edges.is_self_edge,
        previous_edges.sources,
        previous_edges.first_seen_at,
        previous_edges.last_seen_at,
        previous_edges.times_seen,
        previous_edges.first_record_id,
        false as is_active
    from previous_edges
    where previous_edges.is_active
        and not exists (
            select 1
            from current_edges
            where current_edges.edge_id = previous_edges.edge_id
        )

),

{% else %}

changed as (

    select
        current_edges.*,
        true as is_active
    from current_edges

),

{% endif %}

final as (

    select
        changed.*,
        {{ build_timestamp() }} as changed_at
    from changed

)

select * from final

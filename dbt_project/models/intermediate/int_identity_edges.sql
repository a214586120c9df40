{#-
    Identity graph edges: one row per (undirected) pair of identifiers seen together on a
    record, plus one self-edge per identifier so that identifiers seen alone still become
    a node. E-mails are matched on their identity key (identity_email); blocklisted values
    never produce an edge.

    Incremental (macros/identity_edges_increment.sql, macros/source_increment.sql): while
    records are only added, the records loaded since the previous run are aggregated and
    merged into the stored edges.
    When records went away (a re-delivered file, an erasure) the edge set is recomputed from
    staging, and only edges that appeared, changed (first/last seen, count, sources, first
    record) or disappeared are written. Written edges are stamped with changed_at, and
    with structure_changed_at when the change can move an identifier to another profile
    (the edge appeared, disappeared or was first seen earlier); an edge only seen again
    keeps its structure_changed_at, so int_identifiers_resolved updates its identifiers'
    seen times instead of re-resolving their profiles. A disappeared edge stays as a
    tombstone (is_active = false) so int_identifiers_resolved can re-resolve the profiles
    it held together.
-#}

{{ config(
    materialized='incremental',
    unique_key='edge_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    pre_hook=["{{ identity_session_settings() }}", "{{ source_increment_state_create_sql(this) }}"],
    post_hook=["{{ source_increment_state_record_sql(this, identity_edge_sources()) }}", "{{ identity_analyze_sql(this) }}"],
    indexes=[
        {'columns': ['edge_id'], 'unique': True},
        {'columns': ['left_identifier_type', 'left_identifier_value']},
        {'columns': ['right_identifier_type', 'right_identifier_value']},
        {'columns': ['changed_at']},
    ],
) }}

{%- set plan = source_increment_plan(identity_edge_sources(), 'edge') %}

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
    from web_events{{ source_increment_new_records(plan, 'web', 'web_events') }}

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
    from crm_contacts{{ source_increment_new_records(plan, 'crm', 'crm_contacts') }}

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
    from orders{{ source_increment_new_records(plan, 'shop', 'orders') }}

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
    from tickets{{ source_increment_new_records(plan, 'support', 'tickets') }}

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
    from email_events{{ source_increment_new_records(plan, 'sendgrid', 'email_events') }}

),

-- identity_time_key(seen_at) || record_id, computed once per record: its minimum over an
-- edge's records names the first record that carried the edge
ordered_records as (

    select
        records.*,
        {{ dbt.concat([identity_time_key('seen_at'), 'record_id']) }} as record_order
    from records
    where seen_at is not null

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
        seen_at,
        record_order,
        '{{ left_column }}' as left_type,
        {{ left_column }} as left_value,
        '{{ right_column }}' as right_type,
        {{ right_column }} as right_value
    from ordered_records
    where {{ left_column }} is not null
        and {{ right_column }} is not null
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
        record_order,
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

{%- set sources = ['crm', 'sendgrid', 'shop', 'support', 'web'] -%}
{%- set source_flags = [] -%}
{%- for source in sources -%}
    {%- do source_flags.append("coalesce(max(case when source = '" ~ source ~ "' then '" ~ source ~ ",' end), '')") -%}
{%- endfor %}

edge_aggregates as (

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
        rtrim({{ dbt.concat(source_flags) }}, ',') as sources,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at,
        count(*) as times_seen,
        min(record_order) as first_record_order
    from oriented
    group by
        left_identifier_type,
        left_identifier_value,
        right_identifier_type,
        right_identifier_value

),

{%- set edge_columns = [
    'edge_id', 'left_identifier_type', 'left_identifier_value', 'right_identifier_type',
    'right_identifier_value', 'is_self_edge', 'sources', 'first_seen_at', 'last_seen_at',
    'times_seen', 'first_record_id',
] %}

current_edges as (

    select
        {%- for column in edge_columns if column != 'first_record_id' %}
        {{ column }},
        {%- endfor %}
        {{ identity_after_time_key('first_record_order') }} as first_record_id
    from edge_aggregates

),

{#- a table written before first_record_id / is_active / changed_at existed is rewritten
    whole (on_schema_change adds the columns) -#}
{%- set previous_columns = [] -%}
{%- if execute and is_incremental() -%}
    {%- set previous_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
{%- endif %}
{#- when a stored edge's structure last changed (a table written before
    structure_changed_at existed: its changed_at) -#}
{%- set previous_structure_at = 'cast(null as ' ~ dbt.type_timestamp() ~ ')' -%}
{%- if 'structure_changed_at' in previous_columns -%}
    {%- set previous_structure_at = 'coalesce(previous_edges.structure_changed_at, previous_edges.changed_at)' -%}
{%- elif 'changed_at' in previous_columns -%}
    {%- set previous_structure_at = 'previous_edges.changed_at' -%}
{%- endif %}

{% if plan is not none %}

-- the new records' edges merged into the stored ones
changed as (
    {{ identity_edges_merged('edge_aggregates', 'previous_edges', sources, previous_structure_at) }}
),

{% elif is_incremental() and 'is_active' in previous_columns %}

-- one full outer join with the previous run: new or changed edges, and tombstones for
-- edges no record carries any more (their previous values, is_active = false)
changed as (

    select
        {% for column in edge_columns %}
        case when current_edges.edge_id is null then previous_edges.{{ column }} else current_edges.{{ column }} end
            as {{ column }},
        {% endfor %}
        current_edges.edge_id is not null as is_active,
        case
            when current_edges.edge_id is not null
                and coalesce(previous_edges.is_active, false)
                and previous_edges.first_seen_at = current_edges.first_seen_at
                then {{ previous_structure_at }}
        end as structure_kept_at
    from current_edges
    full outer join {{ this }} as previous_edges
        on previous_edges.edge_id = current_edges.edge_id
    where (current_edges.edge_id is null and coalesce(previous_edges.is_active, true))
        or (
            current_edges.edge_id is not null
            and (
                previous_edges.edge_id is null
                -- rows written before is_active existed have it null: rewrite them
                or not coalesce(previous_edges.is_active, false)
                or previous_edges.first_seen_at <> current_edges.first_seen_at
                or previous_edges.last_seen_at <> current_edges.last_seen_at
                or previous_edges.times_seen <> current_edges.times_seen
                or previous_edges.sources <> current_edges.sources
                or coalesce(previous_edges.first_record_id, '') <> current_edges.first_record_id
            )
        )

),

{% elif is_incremental() %}

changed as (

    select
        current_edges.*,
        true as is_active,
        cast(null as {{ dbt.type_timestamp() }}) as structure_kept_at
    from current_edges

    union all

    select
        {% for column in edge_columns %}
        {{ 'cast(null as ' ~ dbt.type_string() ~ ')' if column == 'first_record_id' else 'previous_edges.' ~ column }}
            as {{ column }},
        {% endfor %}
        false as is_active,
        cast(null as {{ dbt.type_timestamp() }}) as structure_kept_at
    from {{ this }} as previous_edges
    where not exists (
        select 1 from current_edges where current_edges.edge_id = previous_edges.edge_id
    )

),

{% else %}

changed as (

    select
        current_edges.*,
        true as is_active,
        cast(null as {{ dbt.type_timestamp() }}) as structure_kept_at
    from current_edges

),

{% endif %}

final as (

    select
        {%- for column in edge_columns %}
        changed.{{ column }},
        {%- endfor %}
        changed.is_active,
        {{ build_timestamp() }} as changed_at,
        coalesce(changed.structure_kept_at, {{ build_timestamp() }}) as structure_changed_at
    from changed

)

select * from final

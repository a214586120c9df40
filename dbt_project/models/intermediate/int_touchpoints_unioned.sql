{#-
    Every touchpoint from every source, with the identifier it was recorded under and the
    profile that identifier resolved to (e-mails matched on their identity key), so
    touchpoints recorded before a person was identified (anonymous web sessions) move to the
    profile as soon as a link appears. profile_id is null when the touchpoint carries no
    usable identifier (e.g. only a blocklisted e-mail); fct_touchpoints keeps attributed
    touchpoints only.

    Incremental (macros/touchpoint_restatement.sql): a run restates every touchpoint of the
    source records loaded since the previous run (late-arriving ones included), of the days
    inside the restatement window (var('restatement_lookback_days')) for the sources whose
    records went away since the previous run (their record counts: int_touchpoints_unioned_state)
    and of the identifiers whose profile id changed, and writes only the rows that differ
    from the stored ones
    (restated_at: when a row was last written); rows of a restated record or day that no
    source holds any more are deleted. A full refresh builds the same table.
    The profiles of the rows written or deleted are logged in int_touchpoint_changes
    (touchpoint_replace strategy, macros/profile_rebuild.sql) for int_profiles_to_rebuild.
    Indexes: the plan reads max(loaded_at) and max(restated_at), the window's records, the
    vanished rows and int_profiles_to_rebuild are found by occurred_at, the records of a
    changed identifier by identifier_value (the staging rows then by their key's index,
    new ones by the raw tables' load time index), the profile marts read the listed
    profiles (profile_id), and the data tests check only the rows restated since they last
    passed (restated_at), touchpoint ids among all others (unique, also enforced on write);
    a run compares the restated rows with the stored ones by touchpoint id, and finds the
    stored rows of a restated record by source_record_id.
    Indexes are created with the table: add them to an existing one by a --full-refresh.
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='touchpoint_replace',
    on_schema_change='sync_all_columns',
    pre_hook=["{{ touchpoint_changes_create_sql(this) }}", "{{ source_increment_state_create_sql(this) }}"],
    post_hook=["{{ source_increment_state_record_sql(this, touchpoint_sources()) }}", "{{ identity_analyze_sql(this) }}"],
    indexes=[
        {'columns': ['touchpoint_id'], 'unique': True},
        {'columns': ['profile_id']},
        {'columns': ['restated_at']},
        {'columns': ['loaded_at']},
        {'columns': ['occurred_at']},
        {'columns': ['identifier_value']},
        {'columns': ['source_record_id']},
    ],
) }}

{#- runs after the edges (a dependency), whose record counts of this run it uses -#}
{%- set plan = touchpoint_restatement_plan(ref('int_identity_edges')) %}

with

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

),

changed_identifiers as (

    {{ touchpoint_changed_identifiers(plan, ref('int_identifiers_resolved')) }}

),

web_events as (

    {{ touchpoint_records(ref('stg_web__events'), plan, 'web', 'event_id') }}

),

orders as (

    {{ touchpoint_records(ref('stg_shop__orders'), plan, 'shop', 'order_id') }}

),

tickets as (

    {{ touchpoint_records(ref('stg_support__tickets'), plan, 'support', 'ticket_id') }}

),

email_events as (

    {{ touchpoint_records(ref('stg_sendgrid__events'), plan, 'sendgrid', 'email_event_id') }}

),

web_touchpoints as (

    select
        {{ dbt.concat(["'web:'", "web_events.event_id"]) }} as touchpoint_id,
        'web' as source,
        'web' as channel,
        web_events.event_name as touchpoint_type,
        web_events.occurred_at,
        cast(null as {{ dbt.type_numeric() }}) as amount,
        web_events.event_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        -- the most specific identifier that resolved (they are all in one profile
        -- unless one of them was blocklisted); the anonymous id otherwise
        case
            when by_user.profile_id is not null then 'user_id'
            when by_email.profile_id is not null then 'email'
            else 'anonymous_id'
        end as identifier_type,
        case
            when by_user.profile_id is not null then web_events.user_id
            when by_email.profile_id is not null then web_events.email
            else web_events.anonymous_id
        end as identifier_value,
        coalesce(by_user.profile_id, by_email.profile_id, by_anonymous.profile_id) as profile_id,
        web_events.loaded_at
    from web_events
    left join identifiers as by_user
        on by_user.identifier_type = 'user_id'
        and by_user.identifier_value = web_events.user_id
    left join identifiers as by_email
        on by_email.identifier_type = 'email'
        and by_email.identifier_value = {{ identity_email('web_events.email') }}
    left join identifiers as by_anonymous
        on by_anonymous.identifier_type = 'anonymous_id'
        and by_anonymous.identifier_value = web_events.anonymous_id

),

order_touchpoints as (

    select
        {{ dbt.concat(["'order:'", "orders.order_id"]) }} as touchpoint_id,
        'shop' as source,
        'shop' as channel,
        {{ dbt.concat(["'order_'", "orders.order_status"]) }} as touchpoint_type,
        orders.ordered_at as occurred_at,
        orders.order_amount as amount,
        orders.order_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        'email' as identifier_type,
        orders.customer_email as identifier_value,
        identifiers.profile_id,
        orders.loaded_at
    from orders
    left join identifiers
        on identifiers.identifier_type = 'email'
        and identifiers.identifier_value = {{ identity_email('orders.customer_email') }}

),

ticket_events as (

    select
        ticket_id,
        requester_email,
        'ticket_opened' as touchpoint_type,
        'ticket_opened:' as id_prefix,
        opened_at as occurred_at,
        loaded_at
    from tickets

    union all

    select
        ticket_id,
        requester_email,
        'ticket_solved',
        'ticket_solved:',
        solved_at,
        loaded_at
    from tickets
    where solved_at is not null

),

ticket_touchpoints as (

    select
        {{ dbt.concat(["ticket_events.id_prefix", "ticket_events.ticket_id"]) }} as touchpoint_id,
        'support' as source,
        'support' as channel,
        ticket_events.touchpoint_type,
        ticket_events.occurred_at,
        cast(null as {{ dbt.type_numeric() }}) as amount,
        ticket_events.ticket_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        'email' as identifier_type,
        ticket_events.requester_email as identifier_value,
        identifiers.profile_id,
        ticket_events.loaded_at
    from ticket_events
    left join identifiers
        on identifiers.identifier_type = 'email'
        and identifiers.identifier_value = {{ identity_email('ticket_events.requester_email') }}

),

email_touchpoints as (

    select
        {{ dbt.concat(["'email:'", "email_events.email_event_id"]) }} as touchpoint_id,
        'sendgrid' as source,
        'email' as channel,
        {{ dbt.concat(["'email_'", "email_events.event_type"]) }} as touchpoint_type,
        email_events.occurred_at,
        cast(null as {{ dbt.type_numeric() }}) as amount,
        email_events.email_event_id as source_record_id,
        email_events.campaign_id,
        'email' as identifier_type,
        email_events.email as identifier_value,
        identifiers.profile_id,
        email_events.loaded_at
    from email_events
    left join identifiers
        on identifiers.identifier_type = 'email'
        and identifiers.identifier_value = {{ identity_email('email_events.email') }}

),

unioned as (

    select * from web_touchpoints
    union all
    select * from order_touchpoints
    union all
    select * from ticket_touchpoints
    union all
    select * from email_touchpoints

),

final as (

    select
        unioned.*,
        {{ build_timestamp() }} as restated_at
    from unioned

)

select * from final

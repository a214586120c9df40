{#-
    Every touchpoint from every source, with the identifier it was recorded under and the
    profile that identifier resolved to (e-mails matched on their identity key). Rebuilt on
    every run from the current resolution, so touchpoints recorded before a person was
    identified (anonymous web sessions) move to the profile as soon as a link appears. profile_id is null when the touchpoint carries no
    usable identifier (e.g. only a blocklisted e-mail); fct_touchpoints keeps attributed
    touchpoints only.
-#}

with

web_events as (

    select * from {{ ref('stg_web__events') }}

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

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

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
        coalesce(by_user.profile_id, by_email.profile_id, by_anonymous.profile_id) as profile_id
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
        identifiers.profile_id
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
        opened_at as occurred_at
    from tickets

    union all

    select
        ticket_id,
        requester_email,
        'ticket_solved',
        'ticket_solved:',
        solved_at
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
        identifiers.profile_id
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
        identifiers.profile_id
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

)

select * from unioned

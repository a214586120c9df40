{#-
    The stored part of dim_customers, one row per resolved profile: every identifier,
    first/last seen, channels, orders and revenue, support, consent and deliverability,
    the latest customer activity and the journey stage. Revenue is converted to
    var('reporting_currency') with the currency_rates seed; revenue_by_currency keeps the
    amounts as they were paid. Nothing here depends on var('as_of'): dim_customers (a view)
    adds the rolling activity counts and is_stalled when read. Incremental by profile
    (macros/profile_rebuild.sql).
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='profile_replace',
    indexes=[{'columns': ['profile_id']}],
    post_hook="{{ identity_analyze_sql(this) }}",
    pre_hook="{{ prefer_hash_joins() }}",
) }}
{%- set scope = profile_rebuild_scope() %}

with

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}
    where true {{ profile_rebuild_filter(scope, indexed=false) }}

),

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}
    where true {{ profile_rebuild_filter(scope) }}

),

stage_history as (

    select * from {{ ref('fct_customer_stage_history') }}
    where is_current {{ profile_rebuild_filter(scope) }}

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

currency_rates as (

    select * from {{ ref('currency_rates') }}

),

email_identifiers as (

    select profile_id, identifier_value
    from identifiers
    where identifier_type = 'email'

),

-- most recently seen identifier of each type per profile
latest_identifiers as (

    select
        profile_id,
        max(case when identifier_type = 'user_id' then identifier_value end) as user_id,
        max(case when identifier_type = 'crm_id' then identifier_value end) as crm_id,
        max(case when identifier_type = 'phone' then identifier_value end) as phone
    from (
        select
            profile_id,
            identifier_type,
            identifier_value,
            row_number() over (
                partition by profile_id, identifier_type
                order by last_seen_at desc, identifier_value desc
            ) as recency_rank
        from identifiers
    ) as ranked
    where recency_rank = 1
    group by profile_id

),

-- every identifier of the profile, by type
identifier_lists as (

    select
        profile_id,
        count(*) as identifier_count,
        {% for identifier_type, column in [
            ('email', 'emails'), ('phone', 'phones'), ('user_id', 'user_ids'),
            ('crm_id', 'crm_ids'), ('anonymous_id', 'anonymous_ids'),
        ] %}
        {{ dbt.listagg(
            "case when identifier_type = '" ~ identifier_type ~ "' then identifier_value end",
            "','",
            'order by identifier_value'
        ) }} as {{ column }}{{ ',' if not loop.last }}
        {% endfor %}
    from identifiers
    group by profile_id

),

-- the e-mail address to write to: the one the person used last, as they typed it
-- (normalised), matched to the profile on its identity key
latest_email as (

    select profile_id, email
    from (
        select
            email_identifiers.profile_id,
            email_spellings.email,
            row_number() over (
                partition by email_identifiers.profile_id
                order by email_spellings.last_seen_at desc, email_spellings.email desc
            ) as recency_rank
        from {{ ref('int_email_spellings') }} as email_spellings
        inner join email_identifiers
            on email_identifiers.identifier_value = {{ identity_email('email_spellings.email') }}
    ) as ranked
    where recency_rank = 1

),

-- the touchpoints in one pass (by profile and channel, then by profile): what the profile
-- did, when, and on which channels
touchpoints_by_channel as (

    select
        profile_id,
        channel,
        count(*) as touchpoint_count,
        min(occurred_at) as first_at,
        max(occurred_at) as last_at,
        max(case when {{ is_customer_activity('touchpoint_type') }} then occurred_at end)
            as last_activity_at
    from touchpoints
    {#- channel first: grouped by profile first, the planner sorted every touchpoint of the
        listed profiles (3.5 M of 10 M, spilling 190 MB) to hand `activity` its groups in
        profile order; this way it hashes them into (channel, profile) groups and sorts those #}
    group by channel, profile_id

),

activity as (

    select
        profile_id,
        cast(sum(touchpoint_count) as {{ dbt.type_bigint() }}) as touchpoint_count,
        min(first_at) as first_at,
        max(last_at) as last_at,
        max(last_activity_at) as last_activity_at,
        {{ dbt.listagg('channel', "','", 'order by channel') }} as channels_used
    from touchpoints_by_channel
    group by profile_id

),

sightings as (

    select profile_id, first_seen_at as seen_at from identifiers
    union all
    select profile_id, last_seen_at from identifiers
    union all
    select profile_id, first_at from activity
    union all
    select profile_id, last_at from activity

),

seen as (

    select
        profile_id,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at
    from sightings
    group by profile_id

),

completed_orders as (

    select
        email_identifiers.profile_id,
        coalesce(orders.currency, '{{ var("reporting_currency") }}') as currency,
        orders.order_amount,
        orders.order_amount * currency_rates.rate_to_reporting_currency as reporting_amount
    from orders
    inner join email_identifiers
        on email_identifiers.identifier_value = {{ identity_email('orders.customer_email') }}
    left join currency_rates
        on currency_rates.currency = coalesce(orders.currency, '{{ var("reporting_currency") }}')
    where orders.is_completed

),

revenue_per_currency as (

    select
        profile_id,
        currency,
        sum(order_amount) as amount
    from completed_orders
    group by profile_id, currency

),

revenue as (

    select
        completed_orders.profile_id,
        count(*) as order_count,
        sum(completed_orders.reporting_amount) as revenue,
        by_currency.revenue_by_currency
    from completed_orders
    inner join (
        select
            profile_id,
            {{ dbt.listagg(
                dbt.concat(["currency", "' '", "cast(amount as " ~ dbt.type_string() ~ ")"]),
                "', '",
                'order by currency'
            ) }} as revenue_by_currency
        from revenue_per_currency
        group by profile_id
    ) as by_currency
        on by_currency.profile_id = completed_orders.profile_id
    group by completed_orders.profile_id, by_currency.revenue_by_currency

),

support as (

    select
        email_identifiers.profile_id,
        count(distinct tickets.ticket_id) as open_support_cases
    from tickets
    inner join email_identifiers
        on email_identifiers.identifier_value = {{ identity_email('tickets.requester_email') }}
    where tickets.is_open
    group by email_identifiers.profile_id

),

-- consent as recorded on the profile's most recently updated CRM contact
consent as (

    select profile_id, email_consent
    from (
        select
            identifiers.profile_id,
            crm_contacts.email_consent,
            row_number() over (
                partition by identifiers.profile_id
                order by crm_contacts.updated_at desc, crm_contacts.crm_id desc
            ) as recency_rank
        from crm_contacts
        inner join identifiers
            on identifiers.identifier_type = 'crm_id'
            and identifiers.identifier_value = crm_contacts.crm_id
    ) as ranked
    where recency_rank = 1

),

-- deliverability of each address, from its latest event that says something about it
-- (opens/clicks are left out: they can come from old messages after an unsubscribe)
address_status as (

    select email, email_status
    from (
        select
            email,
            case
                when event_type = 'bounce' then 'bounced'
                when event_type = 'spamreport' then 'spam_reported'
                when event_type in ('unsubscribe', 'group_unsubscribe') then 'unsubscribed'
                else 'ok'
            end as email_status,
            row_number() over (
                partition by email
                order by occurred_at desc, email_event_id desc
            ) as recency_rank
        from email_events
        where event_type in (
            'delivered', 'bounce', 'spamreport', 'unsubscribe', 'group_unsubscribe'
        )
        {%- if scope is not none %}
            and email in (select latest_email.email from latest_email)
        {%- endif %}
    ) as ranked
    where recency_rank = 1

),

current_stage as (

    select
        profile_id,
        stage as current_stage,
        entered_at as current_stage_entered_at
    from stage_history
    where is_current

),

final as (

    select
        identifier_lists.profile_id,
        latest_email.email,
        latest_identifiers.user_id,
        latest_identifiers.crm_id,
        latest_identifiers.phone,
        identifier_lists.identifier_count,
        identifier_lists.emails,
        identifier_lists.phones,
        identifier_lists.user_ids,
        identifier_lists.crm_ids,
        identifier_lists.anonymous_ids,
        seen.first_seen_at,
        seen.last_seen_at,
        activity.channels_used,
        coalesce(activity.touchpoint_count, 0) as touchpoint_count,
        activity.last_activity_at,
        coalesce(revenue.order_count, 0) as order_count,
        coalesce(revenue.revenue, 0) as revenue,
        '{{ var("reporting_currency") }}' as revenue_currency,
        revenue.revenue_by_currency,
        coalesce(support.open_support_cases, 0) as open_support_cases,
        coalesce(support.open_support_cases, 0) > 0 as has_open_support_case,
        coalesce(consent.email_consent, false) as email_consent,
        coalesce(address_status.email_status, 'ok') as email_status,
        current_stage.current_stage,
        current_stage.current_stage_entered_at
    from identifier_lists
    left join latest_identifiers
        on latest_identifiers.profile_id = identifier_lists.profile_id
    left join latest_email
        on latest_email.profile_id = identifier_lists.profile_id
    left join seen
        on seen.profile_id = identifier_lists.profile_id
    left join activity
        on activity.profile_id = identifier_lists.profile_id
    left join revenue
        on revenue.profile_id = identifier_lists.profile_id
    left join support
        on support.profile_id = identifier_lists.profile_id
    left join consent
        on consent.profile_id = identifier_lists.profile_id
    left join address_status
        on address_status.email = latest_email.email
    left join current_stage
        on current_stage.profile_id = identifier_lists.profile_id

)

select * from final

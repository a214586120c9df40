{#- One row per resolved profile (customer), with identifiers, activity and journey state. -#}

with

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

),

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

stage_history as (

    select * from {{ ref('fct_customer_stage_history') }}

),

crm_contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

tickets as (

    select * from {{ ref('stg_support__tickets') }}

),

email_events as (

    select * from {{ ref('stg_sendgrid__events') }}

),

-- most recently seen identifier of each type per profile
latest_identifiers as (

    select
        profile_id,
        max(case when identifier_type = 'email' then identifier_value end) as email,
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

sightings as (

    select profile_id, first_seen_at as seen_at from identifiers
    union all
    select profile_id, last_seen_at from identifiers
    union all
    select profile_id, occurred_at from touchpoints

),

seen as (

    select
        profile_id,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at
    from sightings
    group by profile_id

),

channels as (

    select
        profile_id,
        {{ dbt.listagg('channel', "','", 'order by channel') }} as channels_used
    from (select distinct profile_id, channel from touchpoints) as distinct_channels
    group by profile_id

),

activity as (

    select
        profile_id,
        count(*) as touchpoint_count,
        sum(case when touchpoint_type = 'order_completed' then 1 else 0 end) as order_count,
        sum(case when touchpoint_type = 'order_completed' then amount else 0 end) as revenue
    from touchpoints
    group by profile_id

),

support as (

    select
        identifiers.profile_id,
        count(distinct tickets.ticket_id) as open_support_cases
    from tickets
    inner join identifiers
        on identifiers.identifier_type = 'email'
        and identifiers.identifier_value = tickets.requester_email
    where tickets.is_open
    group by identifiers.profile_id

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
        latest_identifiers.profile_id,
        latest_identifiers.email,
        latest_identifiers.user_id,
        latest_identifiers.crm_id,
        latest_identifiers.phone,
        seen.first_seen_at,
        seen.last_seen_at,
        channels.channels_used,
        coalesce(activity.touchpoint_count, 0) as touchpoint_count,
        coalesce(activity.order_count, 0) as order_count,
        coalesce(activity.revenue, 0) as revenue,
        coalesce(support.open_support_cases, 0) as open_support_cases,
        coalesce(support.open_support_cases, 0) > 0 as has_open_support_case,
        coalesce(consent.email_consent, false) as email_consent,
        coalesce(address_status.email_status, 'ok') as email_status,
        current_stage.current_stage,
        current_stage.current_stage_entered_at,
        coalesce(
            current_stage.current_stage <> 'retention'
            and current_stage.current_stage_entered_at
                < {{ dbt.dateadd('day', -1 * var('stalled_days'), build_timestamp()) }},
            false
        ) as is_stalled
    from latest_identifiers
    left join seen
        on seen.profile_id = latest_identifiers.profile_id
    left join channels
        on channels.profile_id = latest_identifiers.profile_id
    left join activity
        on activity.profile_id = latest_identifiers.profile_id
    left join support
        on support.profile_id = latest_identifiers.profile_id
    left join consent
        on consent.profile_id = latest_identifiers.profile_id
    left join address_status
        on address_status.email = latest_identifiers.email
    left join current_stage
        on current_stage.profile_id = latest_identifiers.profile_id

)

select * from final

{#-
    One row per profile: what campaign activation needs to know about contacting it by e-mail.
    Name and country come from the profile's CRM contact (dim_customers.crm_id); the time zone
    from the country (seed country_time_zones). E-mail suppression facts come from SendGrid
    events on the profile's address: unsubscribes and spam reports are permanent, while an
    address is undeliverable only while its latest delivery outcome is a bounce or a drop.
    Incremental by profile (macros/profile_rebuild.sql).
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='profile_replace',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['profile_id']}, {'columns': ['rebuilt_at']}],
    post_hook="{{ identity_analyze_sql(this) }}",
) }}
{%- set scope = profile_rebuild_scope() %}

with

customers as (

    select * from {{ ref('int_customer_profiles') }}
    where true {{ profile_rebuild_filter(scope) }}

),

crm_contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

email_events as (

    select * from {{ ref('stg_sendgrid__events') }}

),

time_zones as (

    select * from {{ ref('country_time_zones') }}

),

latest_contacts as (

    select crm_id, first_name, country
    from (
        select
            crm_id,
            first_name,
            country,
            row_number() over (partition by crm_id order by updated_at desc) as recency_rank
        from crm_contacts
        {%- if scope is not none %}
        where crm_id in (select customers.crm_id from customers)
        {%- endif %}
    ) as ranked
    where recency_rank = 1

),

permanent_opt_outs as (

    select
        email,
        max(case when event_type in ('unsubscribe', 'group_unsubscribe') then occurred_at end)
            as unsubscribed_at,
        max(case when event_type = 'spamreport' then occurred_at end) as spam_reported_at
    from email_events
    where event_type in ('unsubscribe', 'group_unsubscribe', 'spamreport')
    {%- if scope is not none %}
        and email in (select customers.email from customers)
    {%- endif %}
    group by email

),

delivery_outcomes as (

    select email, event_type, occurred_at
    from (
        select
            email,
            event_type,
            occurred_at,
            row_number() over (
                partition by email
                order by occurred_at desc, email_event_id desc
            ) as recency_rank
        from email_events
        where event_type in ('delivered', 'bounce', 'dropped')
        {%- if scope is not none %}
            and email in (select customers.email from customers)
        {%- endif %}
    ) as ranked
    where recency_rank = 1

),

final as (

    select
        customers.profile_id,
        customers.email,
        latest_contacts.first_name,
        latest_contacts.country,
        time_zones.time_zone,
        permanent_opt_outs.unsubscribed_at,
        permanent_opt_outs.spam_reported_at,
        case delivery_outcomes.event_type
            when 'bounce' then 'bounced'
            when 'dropped' then 'dropped'
        end as undeliverable_reason,
        case
            when delivery_outcomes.event_type in ('bounce', 'dropped')
                then delivery_outcomes.occurred_at
        end as undeliverable_at,
        {{ build_timestamp() }} as rebuilt_at
    from customers
    left join latest_contacts
        on latest_contacts.crm_id = customers.crm_id
    left join time_zones
        on time_zones.country_code = latest_contacts.country
    left join permanent_opt_outs
        on permanent_opt_outs.email = customers.email
    left join delivery_outcomes
        on delivery_outcomes.email = customers.email

)

select * from final

{#-
    One row per resolved profile (customer): every identifier, first/last seen, channels,
    orders and revenue, support, consent and deliverability, rolling activity counts and
    journey state. A view over int_customer_profiles (stored, incremental by profile) that
    adds what moves with var('as_of') for every profile when read: the rolling 30/90-day
    activity counts (from the touchpoints of the last 90 days) and is_stalled.
-#}

{{ config(materialized='view') }}

with

customers as (

    select * from {{ ref('int_customer_profiles') }}

),

recent_touchpoints as (

    select profile_id, occurred_at
    from {{ ref('fct_touchpoints') }}
    where occurred_at > {{ dbt.dateadd('day', -90, as_of_timestamp()) }}

),

activity as (

    select
        profile_id,
        {% for days in [30, 90] %}
        sum(case when occurred_at > {{ dbt.dateadd('day', -days, as_of_timestamp()) }} then 1 else 0 end)
            as touchpoints_last_{{ days }}d,
        count(distinct case
            when occurred_at > {{ dbt.dateadd('day', -days, as_of_timestamp()) }}
                then {{ utc_date('occurred_at') }}
        end) as active_days_last_{{ days }}d{{ ',' if not loop.last }}
        {% endfor %}
    from recent_touchpoints
    group by profile_id

),

final as (

    select
        customers.profile_id,
        customers.email,
        customers.user_id,
        customers.crm_id,
        customers.phone,
        customers.identifier_count,
        customers.emails,
        customers.phones,
        customers.user_ids,
        customers.crm_ids,
        customers.anonymous_ids,
        customers.first_seen_at,
        customers.last_seen_at,
        customers.channels_used,
        customers.touchpoint_count,
        cast(coalesce(activity.touchpoints_last_30d, 0) as bigint) as touchpoints_last_30d,
        cast(coalesce(activity.touchpoints_last_90d, 0) as bigint) as touchpoints_last_90d,
        coalesce(activity.active_days_last_30d, 0) as active_days_last_30d,
        coalesce(activity.active_days_last_90d, 0) as active_days_last_90d,
        customers.order_count,
        customers.revenue,
        customers.revenue_currency,
        customers.revenue_by_currency,
        customers.open_support_cases,
        customers.has_open_support_case,
        customers.email_consent,
        customers.email_status,
        customers.current_stage,
        customers.current_stage_entered_at,
        coalesce(
            customers.current_stage not in {{ stage_list_sql([journey_funnel_stages() | last, lapsed_stage()]) }}
            and customers.current_stage_entered_at
                < {{ dbt.dateadd('day', -1 * var('stalled_days'), as_of_timestamp()) }},
            false
        ) as is_stalled
    from customers
    left join activity
        on activity.profile_id = customers.profile_id

)

select * from final

{#- Completed orders of profiles with their amount in var('reporting_currency'); incremental by profile. -#}

{{ config(
    materialized='incremental',
    incremental_strategy='profile_replace',
    indexes=[{'columns': ['profile_id']}],
) }}
{%- set scope = profile_rebuild_scope() %}

with

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}
    where touchpoint_type = 'order_completed' {{ profile_rebuild_filter(scope) }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

currency_rates as (

    select * from {{ ref('currency_rates') }}

),

final as (

    select
        touchpoints.touchpoint_id,
        touchpoints.profile_id,
        touchpoints.occurred_at,
        orders.order_id,
        round(
            cast(orders.order_amount * currency_rates.rate_to_reporting_currency as {{ dbt.type_numeric() }}),
            2
        ) as revenue
    from touchpoints
    inner join orders
        on orders.order_id = touchpoints.source_record_id
    left join currency_rates
        on currency_rates.currency = coalesce(orders.currency, '{{ var("reporting_currency") }}')
    where touchpoints.touchpoint_type = 'order_completed'

)

select * from final

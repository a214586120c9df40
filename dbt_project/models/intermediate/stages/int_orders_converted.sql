{#-
    Completed orders of profiles with their amount in var('reporting_currency'); incremental by
    profile.

    On an incremental run the listed profiles' order touchpoints are collected once
    (materialized). The planner takes `= any(array(...))` for ten profiles, so inlined it
    planned a parallel join in which each of three processes scanned every touchpoint of the
    listed profiles for the hash it built (10 M touchpoints, 94 k listed profiles: 3.5 s
    against 1.6 s). A full build keeps the parallel scan of all touchpoints (0.75 s against
    1.0 s materialized).
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

touchpoints as {% if scope is not none %}materialized {% endif %}(

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
        ) as revenue,
        {{ build_timestamp() }} as rebuilt_at
    from touchpoints
    inner join orders
        on orders.order_id = touchpoints.source_record_id
    left join currency_rates
        on currency_rates.currency = coalesce(orders.currency, '{{ var("reporting_currency") }}')
    where touchpoints.touchpoint_type = 'order_completed'

)

select * from final

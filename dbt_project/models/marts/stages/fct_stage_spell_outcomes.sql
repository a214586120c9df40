{#-
    What came of each stage spell, the profile-level fact the stage KPIs aggregate: its
    cohort day and week, whether it moved on to a later stage (for lapsed: came back),
    lapsed or regressed next, and the orders and revenue while in the stage.
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

stage_history as (

    select * from {{ ref('fct_customer_stage_history') }}
    where true {{ profile_rebuild_filter(scope) }}

),

orders as (

    select * from {{ ref('int_orders_converted') }}
    where true {{ profile_rebuild_filter(scope) }}

),

spell_orders as (

    select
        stage_history.stage_spell_id,
        count(orders.order_id) as orders_in_stage,
        coalesce(sum(orders.revenue), 0) as revenue_in_stage
    from stage_history
    left join orders
        on orders.profile_id = stage_history.profile_id
        and orders.occurred_at >= stage_history.entered_at
        and (stage_history.exited_at is null or orders.occurred_at < stage_history.exited_at)
    group by stage_history.stage_spell_id

),

final as (

    select
        stage_history.stage_spell_id,
        stage_history.profile_id,
        stage_history.stage,
        stage_history.stage_order,
        stage_history.spell_number,
        stage_history.entered_at,
        {{ utc_date('stage_history.entered_at') }} as cohort_day,
        {{ week_start(utc_date('stage_history.entered_at')) }} as cohort_week,
        stage_history.exited_at,
        stage_history.exited_to,
        stage_history.hours_in_stage,
        stage_history.is_regression,
        coalesce(
            case
                when stage_history.stage = '{{ lapsed_stage() }}'
                    then stage_history.exited_to is not null
                else {{ stage_rank_sql('stage_history.exited_to') }} > {{ stage_rank_sql('stage_history.stage') }}
            end,
            false
        ) as converted_to_next,
        coalesce(stage_history.exited_to = '{{ lapsed_stage() }}', false) as lapsed_next,
        cast(spell_orders.orders_in_stage as integer) as orders_in_stage,
        spell_orders.revenue_in_stage,
        {{ build_timestamp() }} as rebuilt_at
    from stage_history
    inner join spell_orders
        on spell_orders.stage_spell_id = stage_history.stage_spell_id

)

select * from final

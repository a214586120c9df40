{#-
    Stage KPIs per cohort period (cohort_day or cohort_week of fct_stage_spell_outcomes) and
    stage: entries, conversion to a later stage, drop-off, churn into lapsed, time in stage,
    revenue and order value in the stage, and the repeat rate and CLV of the cohort.
    Every stage of the rules appears for every period with entries (zero-filled).
-#}
{% macro stage_kpis(period_column, period_name) -%}

with

spells as (

    select * from {{ ref('fct_stage_spell_outcomes') }}

),

customer_value as (

    select * from {{ ref('fct_customer_value') }}

),

stages as (

    {{ journey_stage_rows() }}

),

periods as (

    select distinct {{ period_column }} as period_start from spells

),

cohorts as (

    select
        spells.{{ period_column }} as period_start,
        spells.stage,
        count(*) as entered,
        count(distinct spells.profile_id) as customers,
        sum(case when spells.is_regression then 1 else 0 end) as regressions,
        sum(case when spells.converted_to_next then 1 else 0 end) as converted_to_next,
        sum(case when spells.lapsed_next then 1 else 0 end) as lapsed,
        {{ median('spells.hours_in_stage') }} as median_hours_in_stage,
        {{ percentile(0.9, 'spells.hours_in_stage') }} as p90_hours_in_stage,
        sum(spells.orders_in_stage) as orders,
        sum(spells.revenue_in_stage) as revenue,
        sum(case when customer_value.is_repeat_buyer then 1 else 0 end) as repeat_buyers,
        sum(case when customer_value.order_count > 0 then 1 else 0 end) as buyers,
        avg(customer_value.clv) as average_clv
    from spells
    inner join customer_value
        on customer_value.profile_id = spells.profile_id
    group by spells.{{ period_column }}, spells.stage

),

final as (

    select
        periods.period_start as {{ period_name }},
        stages.stage,
        cast(stages.stage_order as integer) as stage_order,
        cast(coalesce(cohorts.entered, 0) as bigint) as entered,
        cast(coalesce(cohorts.customers, 0) as bigint) as customers,
        cast(coalesce(cohorts.regressions, 0) as bigint) as regressions,
        cast(coalesce(cohorts.converted_to_next, 0) as bigint) as converted_to_next,
        case
            when stages.stage <> '{{ journey_funnel_stages() | last }}'
                then cast(coalesce(cohorts.entered, 0) - coalesce(cohorts.converted_to_next, 0) as bigint)
        end as dropped_off,
        case
            when stages.stage <> '{{ journey_funnel_stages() | last }}'
                then round(cast(cohorts.converted_to_next as {{ dbt.type_numeric() }}) / nullif(cohorts.entered, 0), 4)
        end as conversion_rate,
        cast(coalesce(cohorts.lapsed, 0) as bigint) as lapsed,
        case
            when stages.stage <> '{{ lapsed_stage() }}'
                then round(cast(cohorts.lapsed as {{ dbt.type_numeric() }}) / nullif(cohorts.entered, 0), 4)
        end as churn_rate,
        round(cast(cohorts.median_hours_in_stage as {{ dbt.type_numeric() }}), 2) as median_hours_in_stage,
        round(cast(cohorts.p90_hours_in_stage as {{ dbt.type_numeric() }}), 2) as p90_hours_in_stage,
        cast(coalesce(cohorts.orders, 0) as bigint) as orders,
        round(cast(coalesce(cohorts.revenue, 0) as {{ dbt.type_numeric() }}), 2) as revenue,
        round(cast(cohorts.revenue as {{ dbt.type_numeric() }}) / nullif(cohorts.orders, 0), 2)
            as average_order_value,
        round(cast(cohorts.repeat_buyers as {{ dbt.type_numeric() }}) / nullif(cohorts.buyers, 0), 4)
            as repeat_purchase_rate,
        round(cast(cohorts.average_clv as {{ dbt.type_numeric() }}), 2) as average_clv
    from periods
    cross join stages
    left join cohorts
        on cohorts.period_start = periods.period_start
        and cohorts.stage = stages.stage

)

select * from final

{%- endmacro %}

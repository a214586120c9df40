{#-
    Stage conversion by cohort: customers grouped by the UTC day they entered a stage.
    converted_to_next counts those who went on to a later stage (stages can be skipped, so
    any later stage counts); median_hours_to_next is measured over those converters.
    Retention is the last stage: its conversion_rate is null.
-#}

with

stage_history as (

    select * from {{ ref('fct_customer_stage_history') }}

),

final as (

    select
        {{ utc_date('entered_at') }} as day,
        stage,
        stage_order,
        count(*) as entered,
        sum(case when exited_at is not null then 1 else 0 end) as converted_to_next,
        case
            when stage <> 'retention'
                then round(
                    cast(sum(case when exited_at is not null then 1 else 0 end) as {{ dbt.type_numeric() }})
                    / count(*),
                    4
                )
        end as conversion_rate,
        round(cast({{ median('hours_in_stage') }} as {{ dbt.type_numeric() }}), 2) as median_hours_to_next
    from stage_history
    group by {{ utc_date('entered_at') }}, stage, stage_order

)

select * from final

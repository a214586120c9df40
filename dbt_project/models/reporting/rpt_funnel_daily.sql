{#-
    Daily journey funnel for dashboards: every day on which anyone entered a stage, crossed
    with every stage of the rules, lapsed included (zero-filled, from kpi_stage_daily), with
    the running total of entries per stage. Counts only, no personal data.
-#}

with

kpis as (

    select * from {{ ref('kpi_stage_daily') }}

),

final as (

    select
        day,
        stage,
        stage_order,
        entered,
        cast(sum(entered) over (
            partition by stage
            order by day
            rows between unbounded preceding and current row
        ) as bigint) as cumulative_entered,
        converted_to_next,
        conversion_rate,
        median_hours_in_stage as median_hours_to_next,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from kpis

)

select * from final

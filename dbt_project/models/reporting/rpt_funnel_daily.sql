{#-
    Daily journey funnel for dashboards: every day on which anyone entered a stage, crossed
    with the four stages (zero-filled), with the running total of entries per stage.
    Counts only, no personal data.
-#}

with

kpis as (

    select * from {{ ref('kpi_stage_conversion_daily') }}

),

days as (

    select distinct day from kpis

),

stages as (

    {% for stage in journey_stages() %}
    select '{{ stage }}' as stage, {{ loop.index }} as stage_order
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

grid as (

    select days.day, stages.stage, stages.stage_order
    from days
    cross join stages

),

final as (

    select
        grid.day,
        grid.stage,
        cast(grid.stage_order as integer) as stage_order,
        coalesce(kpis.entered, 0) as entered,
        cast(sum(coalesce(kpis.entered, 0)) over (
            partition by grid.stage
            order by grid.day
            rows between unbounded preceding and current row
        ) as bigint) as cumulative_entered,
        coalesce(kpis.converted_to_next, 0) as converted_to_next,
        kpis.conversion_rate,
        kpis.median_hours_to_next,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from grid
    left join kpis
        on kpis.day = grid.day
        and kpis.stage = grid.stage

)

select * from final

{#-
    Weekly journey funnel for dashboards: every ISO week (Monday start, UTC) in which anyone
    entered a stage, crossed with the four stages (zero-filled): entries, how many of them
    went on to a later stage so far, and the drop-off. Counts only, no personal data.
-#}

with

kpis as (

    select * from {{ ref('kpi_stage_conversion_daily') }}

),

weekly as (

    select
        {{ week_start('day') }} as week_start,
        stage,
        sum(entered) as entered,
        sum(converted_to_next) as converted_to_next
    from kpis
    group by {{ week_start('day') }}, stage

),

weeks as (

    select distinct week_start from weekly

),

stages as (

    {% for stage in journey_stages() %}
    select '{{ stage }}' as stage, {{ loop.index }} as stage_order
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

grid as (

    select weeks.week_start, stages.stage, stages.stage_order
    from weeks
    cross join stages

),

final as (

    select
        grid.week_start,
        grid.stage,
        cast(grid.stage_order as integer) as stage_order,
        cast(coalesce(weekly.entered, 0) as bigint) as entered,
        cast(coalesce(weekly.converted_to_next, 0) as bigint) as converted_to_next,
        case
            when grid.stage <> 'retention'
                then cast(coalesce(weekly.entered, 0) - coalesce(weekly.converted_to_next, 0) as bigint)
        end as dropped_off,
        case
            when grid.stage <> 'retention'
                then round(
                    cast(weekly.converted_to_next as {{ dbt.type_numeric() }})
                    / nullif(weekly.entered, 0),
                    4
                )
        end as conversion_rate,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from grid
    left join weekly
        on weekly.week_start = grid.week_start
        and weekly.stage = grid.stage

)

select * from final

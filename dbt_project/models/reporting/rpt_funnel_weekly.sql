{#-
    Weekly journey funnel for dashboards: every ISO week (Monday start, UTC) in which anyone
    entered a stage, crossed with every stage of the rules, lapsed included (zero-filled, from
    kpi_stage_weekly): entries, how many of them went on to a later stage so far (for lapsed:
    came back), and the drop-off. Counts only, no personal data.
-#}

with

kpis as (

    select * from {{ ref('kpi_stage_weekly') }}

),

final as (

    select
        week_start,
        stage,
        stage_order,
        entered,
        converted_to_next,
        dropped_off,
        conversion_rate,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from kpis

)

select * from final

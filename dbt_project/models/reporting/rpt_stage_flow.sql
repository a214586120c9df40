{#-
    Stage flow for Sankey diagrams: how many customers moved from one journey stage to
    another, per ISO week (Monday start, UTC) of the move, and the median time they had
    spent in the stage they left. A customer's first stage comes from 'new' (their first
    touchpoint). Stages may be skipped, so awareness -> decision is a real flow, and moves
    into and out of lapsed (regressions) are flows too. Counts only, no personal data.
-#}

with

stage_history as (

    select * from {{ ref('fct_customer_stage_history') }}

),

moves as (

    select
        {{ week_start(utc_date('spell.entered_at')) }} as week_start,
        coalesce(spell.entered_from, 'new') as from_stage,
        spell.stage as to_stage,
        spell.stage_order as to_stage_order,
        previous_spell.hours_in_stage as hours_in_from_stage
    from stage_history as spell
    left join stage_history as previous_spell
        on previous_spell.profile_id = spell.profile_id
        and previous_spell.spell_number = spell.spell_number - 1

),

final as (

    select
        week_start,
        from_stage,
        to_stage,
        cast(to_stage_order as integer) as to_stage_order,
        cast(count(*) as bigint) as customers,
        round(cast({{ median('hours_in_from_stage') }} as {{ dbt.type_numeric() }}), 2)
            as median_hours_in_from_stage,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from moves
    group by week_start, from_stage, to_stage, to_stage_order

)

select * from final

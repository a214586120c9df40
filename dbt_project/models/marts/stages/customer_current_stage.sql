{#-
    Where every profile with a stage is now: its current spell, since when, how long it has
    been there (up to var('as_of')), and how often it has lapsed or regressed so far.
-#}

with

stage_history as (

    select * from {{ ref('fct_customer_stage_history') }}

),

spell_counts as (

    select
        profile_id,
        count(*) as spell_count,
        sum(case when stage = '{{ lapsed_stage() }}' then 1 else 0 end) as lapse_count,
        sum(case when is_regression then 1 else 0 end) as regression_count
    from stage_history
    group by profile_id

),

final as (

    select
        stage_history.profile_id,
        stage_history.stage as current_stage,
        stage_history.stage_order,
        stage_history.stage_spell_id,
        stage_history.entered_at as current_stage_entered_at,
        stage_history.entered_from,
        stage_history.is_regression,
        stage_history.stage = '{{ lapsed_stage() }}' as is_lapsed,
        cast(floor({{ hours_between('stage_history.entered_at', as_of_timestamp()) }} / 24) as integer)
            as days_in_stage,
        cast(spell_counts.spell_count as integer) as spell_count,
        cast(spell_counts.lapse_count as integer) as lapse_count,
        cast(spell_counts.regression_count as integer) as regression_count
    from stage_history
    inner join spell_counts
        on spell_counts.profile_id = stage_history.profile_id
    where stage_history.is_current

)

select * from final

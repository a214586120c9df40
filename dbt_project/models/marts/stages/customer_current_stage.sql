{#-
    Where every profile with a stage is now: its current spell, since when, how long it has
    been there (up to var('as_of')), and how often it has lapsed or regressed so far.
    A view over the current spells of fct_customer_stage_history: days_in_stage moves with
    as_of for every profile, so it is computed when read, not stored.
-#}

{{ config(materialized='view') }}

with

stage_history as (

    select * from {{ ref('fct_customer_stage_history') }}

),

final as (

    select
        profile_id,
        stage as current_stage,
        stage_order,
        stage_spell_id,
        entered_at as current_stage_entered_at,
        entered_from,
        is_regression,
        stage = '{{ lapsed_stage() }}' as is_lapsed,
        cast(floor({{ hours_between('entered_at', as_of_timestamp()) }} / 24) as integer)
            as days_in_stage,
        spell_number as spell_count,
        lapses_so_far as lapse_count,
        regressions_so_far as regression_count
    from stage_history
    where is_current

)

select * from final

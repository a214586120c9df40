-- Stage spells of a profile chain in time without gaps, numbered 1, 2, ... in that order,
-- and two spells in a row are never in the same stage.
with

spells as (

    select
        profile_id,
        stage,
        spell_number,
        entered_at,
        exited_at,
        entered_from,
        lag(stage) over (partition by profile_id order by spell_number) as previous_stage,
        lead(entered_at) over (partition by profile_id order by spell_number) as next_entered_at,
        row_number() over (partition by profile_id order by spell_number) as expected_number
    from {{ ref('fct_customer_stage_history') }}

)

select *
from spells
where exited_at < entered_at
    or spell_number <> expected_number
    or stage = previous_stage
    or coalesce(entered_from, '') <> coalesce(previous_stage, '')
    or (next_entered_at is not null and exited_at <> next_entered_at)
    or (next_entered_at is null and exited_at is not null)

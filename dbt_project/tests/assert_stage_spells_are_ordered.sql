-- Stage spells of a profile follow the funnel order in time and chain without gaps.
with

spells as (

    select
        profile_id,
        stage,
        entered_at,
        exited_at,
        lead(entered_at) over (partition by profile_id order by stage_order) as next_entered_at
    from {{ ref('fct_customer_stage_history') }}

)

select *
from spells
where exited_at < entered_at
    or (next_entered_at is not null and exited_at <> next_entered_at)
    or (next_entered_at is null and exited_at is not null)

{#-
    Journey stage spells, one row per profile per stage reached. Stages move forward only
    (awareness -> consideration -> decision -> retention) and may be skipped:
      awareness      first touchpoint of any kind
      consideration  the 2nd product_view or the first add_to_cart, whichever comes first
      decision       first completed order
      retention      second completed order within var('retention_window_days') of the first
    No time travel: a stage whose entry would be earlier than the previous stage's entry is
    entered at the previous stage's time. A spell ends when the next one starts.
-#}

with

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

numbered as (

    select
        profile_id,
        touchpoint_type,
        occurred_at,
        row_number() over (
            partition by profile_id, touchpoint_type
            order by occurred_at, touchpoint_id
        ) as occurrence
    from touchpoints
    where touchpoint_type in ('product_view', 'add_to_cart', 'order_completed')

),

milestones as (

    select
        touchpoints.profile_id,
        min(touchpoints.occurred_at) as first_touchpoint_at
    from touchpoints
    group by touchpoints.profile_id

),

occurrences as (

    select
        profile_id,
        max(case when touchpoint_type = 'product_view' and occurrence = 2 then occurred_at end)
            as second_product_view_at,
        max(case when touchpoint_type = 'add_to_cart' and occurrence = 1 then occurred_at end)
            as first_add_to_cart_at,
        max(case when touchpoint_type = 'order_completed' and occurrence = 1 then occurred_at end)
            as first_completed_order_at,
        max(case when touchpoint_type = 'order_completed' and occurrence = 2 then occurred_at end)
            as second_completed_order_at
    from numbered
    group by profile_id

),

candidates as (

    select
        milestones.profile_id,
        milestones.first_touchpoint_at as awareness_at,
        case
            when occurrences.first_add_to_cart_at is null then occurrences.second_product_view_at
            when occurrences.second_product_view_at is null then occurrences.first_add_to_cart_at
            when occurrences.second_product_view_at < occurrences.first_add_to_cart_at
                then occurrences.second_product_view_at
            else occurrences.first_add_to_cart_at
        end as consideration_at,
        occurrences.first_completed_order_at as decision_at,
        case
            when occurrences.second_completed_order_at <= {{ dbt.dateadd(
                'day', var('retention_window_days'), 'occurrences.first_completed_order_at'
            ) }}
                then occurrences.second_completed_order_at
        end as retention_at
    from milestones
    left join occurrences
        on occurrences.profile_id = milestones.profile_id

),

stage_candidates as (

    {% for stage in journey_stages() %}
    select
        profile_id,
        '{{ stage }}' as stage,
        {{ loop.index }} as stage_order,
        {{ stage }}_at as candidate_at
    from candidates
    where {{ stage }}_at is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

no_time_travel as (

    select
        profile_id,
        stage,
        stage_order,
        candidate_at,
        max(candidate_at) over (
            partition by profile_id
            order by stage_order
            rows between unbounded preceding and current row
        ) as entered_at
    from stage_candidates

),

spells as (

    select
        profile_id,
        stage,
        stage_order,
        entered_at,
        lead(entered_at) over (partition by profile_id order by stage_order) as exited_at,
        lag(stage) over (partition by profile_id order by stage_order) as entered_from
    from no_time_travel

),

final as (

    select
        {{ dbt.hash(dbt.concat(["profile_id", "'|'", "stage"])) }} as stage_spell_id,
        profile_id,
        stage,
        stage_order,
        entered_at,
        exited_at,
        entered_from,
        round({{ hours_between('entered_at', 'exited_at') }}, 2) as hours_in_stage,
        exited_at is null as is_current
    from spells

)

select * from final

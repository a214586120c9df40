{#-
    Journey success ranking for dashboards: per ISO week (Monday start, UTC) of the episodes'
    start, every journey with its success score (formula v1, see kpi_journey_success_weekly),
    ranked from the lowest score (rank 1, the journey that needs attention first) to the
    highest, with the change against the journey's previous scored week. Counts, rates and
    sums only, no personal data.
-#}

with

weekly as (

    select * from {{ ref('kpi_journey_success_weekly') }}

),

ranked as (

    select
        weekly.*,
        case
            when success_score is not null
                then row_number() over (
                    partition by week_start, success_score is null
                    order by success_score, journey
                )
        end as score_rank,
        count(success_score) over (partition by week_start) as journeys_scored,
        lag(success_score) over (
            partition by journey, success_score is null
            order by week_start
        ) as previous_score
    from weekly

),

final as (

    select
        week_start,
        journey,
        cast(score_rank as integer) as score_rank,
        cast(journeys_scored as integer) as journeys_scored,
        success_score,
        case when success_score is not null then success_score - previous_score end as score_change,
        score_version,
        coalesce(is_underperforming, false) as is_underperforming,
        episodes_settled,
        completion_rate,
        median_hours_to_goal,
        baseline_hours_to_goal,
        friction_rate,
        episodes_started,
        completed,
        abandoned,
        still_open,
        revenue,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from ranked

)

select * from final

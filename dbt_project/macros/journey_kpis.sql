{#- KPI queries shared by the daily and weekly journey-success and funnel marts. -#}

{#- The version of the journey success score formula in journey_success_score(). -#}
{% macro journey_success_score_version() -%}
    'v1'
{%- endmacro %}

{#-
    Journey success score v1, 0-100 (documented in _journeys__models.yml; change the
    formula only together with journey_success_score_version()):
      100 * (0.5 * completion_rate + 0.3 * speed_factor + 0.2 * (1 - friction_rate))
    over the period's settled episodes (timeout elapsed: outcome final);
    speed_factor = min(1, (baseline + 1) / (median hours to goal + 1)), 1 without a
    baseline, 0 without a completed episode.
    null while no episode of the period is settled.
-#}
{% macro journey_success_score(completion_rate, speed_factor, friction_rate, settled) -%}
    case
        when {{ settled }} > 0
            then round(
                100 * (
                    0.5 * {{ completion_rate }}
                    + 0.3 * {{ speed_factor }}
                    + 0.2 * (1 - {{ friction_rate }})
                ),
                1
            )
    end
{%- endmacro %}

{#-
    Journey completion and success score per journey and period of the episode's start
    (period_expression over fct_journey_episodes.started_day, named period_column).
-#}
{% macro journey_success_kpis(period_column, period_expression) -%}
with

episodes as (

    select
        journey,
        started_day,
        state,
        is_settled,
        hours_to_goal,
        support_contacts,
        unsubscribes,
        bounces,
        revenue,
        {{ period_expression }} as period_start,
        case when is_settled then 1 else 0 end as settled,
        case when is_settled and state = 'completed' then 1 else 0 end as settled_completed,
        case
            when is_settled and support_contacts + unsubscribes + bounces > 0 then 1
            else 0
        end as settled_with_friction
    from {{ ref('fct_journey_episodes') }}

),

{#- the median time to goal is grouped apart, over the settled completed episodes only: an
    ordered-set aggregate in per_period would sort every episode (1.2 M at 10 M touchpoints)
    instead of hashing them -#}
per_period_counts as (

    select
        period_start,
        journey,
        count(*) as episodes_started,
        sum(case when state = 'completed' then 1 else 0 end) as completed,
        sum(case when state = 'abandoned' then 1 else 0 end) as abandoned,
        sum(case when state = 'open' then 1 else 0 end) as still_open,
        sum(settled) as episodes_settled,
        sum(settled_completed) as settled_completed,
        sum(settled_with_friction) as episodes_with_friction,
        sum(support_contacts) as support_contacts,
        sum(unsubscribes) as unsubscribes,
        sum(bounces) as bounces,
        sum(revenue) as revenue
    from episodes
    group by period_start, journey

),

period_medians as (

    select
        period_start,
        journey,
        cast({{ median('hours_to_goal') }} as {{ dbt.type_numeric() }}) as median_hours_to_goal
    from episodes
    where is_settled and hours_to_goal is not null
    group by period_start, journey

),

per_period as (

    select
        per_period_counts.*,
        period_medians.median_hours_to_goal
    from per_period_counts
    left join period_medians
        on period_medians.period_start = per_period_counts.period_start
        and period_medians.journey = per_period_counts.journey

),

{#-
    the journey's own baseline: median time to goal of its completed, settled episodes that
    started in the journey_baseline_days days before the period (periods start at midnight).
    Each journey's times are collected into one array per day (a few hundred rows), and
    each period takes the median of its days' arrays. Matching episodes to the periods they
    are a baseline of instead copied each one to every such period (5.5 M pairs of 0.2 M
    episodes at 10 M touchpoints, 5 s of the model's 6.7 s). Materialized: inlined into the
    per-period subquery, the grouping would run once per period.
-#}
daily_samples as materialized (

    select journey, started_day, array_agg(hours_to_goal) as hours_to_goal
    from episodes
    where state = 'completed' and is_settled
    group by journey, started_day

),

baselines as (

    select
        per_period.period_start,
        per_period.journey,
        (
            select cast({{ median('sample.hours') }} as {{ dbt.type_numeric() }})
            from daily_samples
            cross join lateral unnest(daily_samples.hours_to_goal) as sample(hours)
            where daily_samples.journey = per_period.journey
                and daily_samples.started_day
                    >= per_period.period_start - {{ var('journey_baseline_days') }}
                and daily_samples.started_day < per_period.period_start
        ) as baseline_hours_to_goal
    from per_period

),

factors as (

    select
        per_period.*,
        baselines.baseline_hours_to_goal,
        cast(per_period.settled_completed as {{ dbt.type_numeric() }})
            / nullif(per_period.episodes_settled, 0) as completion_rate,
        case
            when per_period.settled_completed = 0 then 0
            when baselines.baseline_hours_to_goal is null then 1
            {# one hour of slack, so that a near-instant baseline does not zero the factor #}
            else least(
                1,
                (baselines.baseline_hours_to_goal + 1) / (per_period.median_hours_to_goal + 1)
            )
        end as speed_factor,
        cast(per_period.episodes_with_friction as {{ dbt.type_numeric() }})
            / nullif(per_period.episodes_settled, 0) as friction_rate
    from per_period
    left join baselines
        on baselines.period_start = per_period.period_start
        and baselines.journey = per_period.journey

),

final as (

    select
        cast(period_start as date) as {{ period_column }},
        journey,
        cast(episodes_started as integer) as episodes_started,
        cast(completed as integer) as completed,
        cast(abandoned as integer) as abandoned,
        cast(still_open as integer) as still_open,
        cast(episodes_settled as integer) as episodes_settled,
        round(completion_rate, 4) as completion_rate,
        round(median_hours_to_goal, 2) as median_hours_to_goal,
        round(baseline_hours_to_goal, 2) as baseline_hours_to_goal,
        round(speed_factor, 4) as speed_factor,
        cast(episodes_with_friction as integer) as episodes_with_friction,
        round(friction_rate, 4) as friction_rate,
        cast(support_contacts as integer) as support_contacts,
        cast(unsubscribes as integer) as unsubscribes,
        cast(bounces as integer) as bounces,
        revenue,
        {{ journey_success_score('completion_rate', 'speed_factor', 'friction_rate', 'episodes_settled') }}
            as success_score,
        cast({{ journey_success_score_version() }} as {{ dbt.type_string() }}) as score_version,
        {{ journey_success_score('completion_rate', 'speed_factor', 'friction_rate', 'episodes_settled') }}
            < {{ var('journey_success_target') }} as is_underperforming
    from factors

)

select * from final
{%- endmacro %}

{#-
    Funnel entries, steps reached and drop-off per funnel, step and period of the attempt's
    start (period_expression over fct_funnel_attempts.started_day, named period_column).
-#}
{% macro funnel_kpis(period_column, period_expression) -%}
with

attempts as (

    select funnel, steps_reached, {{ period_expression }} as period_start
    from {{ ref('fct_funnel_attempts') }}

),

funnel_steps as (
    {{ funnel_step_rows(funnel_definitions()) }}
),

entered as (

    select period_start, funnel, count(*) as entered
    from attempts
    group by period_start, funnel

),

reached as (

    select attempts.period_start, attempts.funnel, funnel_steps.step_number, count(*) as reached
    from attempts
    inner join funnel_steps
        on funnel_steps.funnel = attempts.funnel
        and funnel_steps.step_number <= attempts.steps_reached
    group by attempts.period_start, attempts.funnel, funnel_steps.step_number

),

grid as (

    select
        entered.period_start,
        entered.funnel,
        entered.entered,
        funnel_steps.step_number,
        funnel_steps.step,
        funnel_steps.step_count,
        coalesce(reached.reached, 0) as reached
    from entered
    inner join funnel_steps
        on funnel_steps.funnel = entered.funnel
    left join reached
        on reached.period_start = entered.period_start
        and reached.funnel = entered.funnel
        and reached.step_number = funnel_steps.step_number

),

final as (

    select
        cast(period_start as date) as {{ period_column }},
        funnel,
        cast(step_number as integer) as step_number,
        step,
        cast(entered as integer) as entered,
        cast(reached as integer) as reached,
        cast(
            reached - lead(reached) over (partition by period_start, funnel order by step_number)
            as integer
        ) as dropped_off,
        round(
            cast(reached as {{ dbt.type_numeric() }})
            / nullif(lag(reached) over (partition by period_start, funnel order by step_number), 0),
            4
        ) as conversion_from_previous,
        round(cast(reached as {{ dbt.type_numeric() }}) / entered, 4) as conversion_from_start
    from grid

)

select * from final
{%- endmacro %}

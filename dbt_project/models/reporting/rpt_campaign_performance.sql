{#-
    Campaign performance per campaign and content variant (plus variant 'all' for the whole
    campaign), measured against the campaign's control group.

    The unit is a campaign entry: one decision that assigned a person to an arm. Treatment
    entries count whether or not a message finally went out (intent to treat: people held back
    by the frequency cap or priority stay in the treatment arm), so the comparison with the
    randomly assigned control is fair. Control = campaign holdout + global control group.

    converted: the campaign's goal touchpoint (e.g. order_completed) happened after the
    decision and within the campaign's attribution window; revenue: completed order amounts
    in that window. Lift is the conversion-rate difference treatment - control with a 95 %
    Wald confidence interval (formula in the yml). No personal data.
-#}

with

campaigns as (

    select * from {{ ref('stg_activation__campaigns') }}

),

decisions as (

    select * from {{ ref('stg_activation__campaign_decisions') }}

),

sends as (

    select * from {{ ref('stg_activation__campaign_sends') }}

),

email_events as (

    select * from {{ ref('stg_sendgrid__events') }}

),

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

entries as (

    select
        decisions.campaign_decision_id,
        decisions.campaign_id,
        decisions.profile_id,
        decisions.send_id,
        decisions.decided_for,
        case when decisions.arm = 'treatment' then 'treatment' else 'control' end as arm_group,
        coalesce(decisions.variant, 'default') as variant,
        campaigns.goal_touchpoint_type,
        campaigns.attribution_days
    from decisions
    inner join campaigns
        on campaigns.campaign_id = decisions.campaign_id
    where decisions.arm is not null
        and decisions.decided_for is not null

),

-- the only touchpoints an outcome counts: goal touchpoints and completed orders (revenue)
outcome_touchpoints as (

    select profile_id, occurred_at, touchpoint_type, amount
    from touchpoints
    where touchpoint_type = 'order_completed'
        or touchpoint_type in (select goal_touchpoint_type from campaigns)

),

outcomes as (

    select
        entries.campaign_decision_id,
        max(case when outcome_touchpoints.touchpoint_type = entries.goal_touchpoint_type then 1 else 0 end)
            as converted,
        sum(case when outcome_touchpoints.touchpoint_type = 'order_completed' then outcome_touchpoints.amount else 0 end)
            as revenue
    from entries
    left join outcome_touchpoints
        on outcome_touchpoints.profile_id = entries.profile_id
        and outcome_touchpoints.occurred_at > entries.decided_for
        and outcome_touchpoints.occurred_at <= {{ dbt.dateadd('day', 'entries.attribution_days', 'entries.decided_for') }}
    group by entries.campaign_decision_id

),

engagement as (

    select
        send_id,
        max(case when event_type = 'delivered' then 1 else 0 end) as was_delivered,
        max(case when event_type = 'open' then 1 else 0 end) as was_opened,
        max(case when event_type = 'click' then 1 else 0 end) as was_clicked
    from email_events
    where send_id is not null
    group by send_id

),

entry_results as (

    select
        entries.campaign_id,
        entries.arm_group,
        entries.variant,
        case when sends.send_status = 'sent' then 1 else 0 end as was_sent,
        coalesce(engagement.was_delivered, 0) as was_delivered,
        coalesce(engagement.was_opened, 0) as was_opened,
        coalesce(engagement.was_clicked, 0) as was_clicked,
        coalesce(outcomes.converted, 0) as converted,
        coalesce(outcomes.revenue, 0) as revenue
    from entries
    left join outcomes
        on outcomes.campaign_decision_id = entries.campaign_decision_id
    left join sends
        on sends.send_id = entries.send_id
    left join engagement
        on engagement.send_id = entries.send_id

),

treatment_rows as (

    select
        campaign_id,
        variant,
        count(*) as entries,
        sum(was_sent) as sent,
        sum(was_delivered) as delivered,
        sum(was_opened) as opened,
        sum(was_clicked) as clicked,
        sum(converted) as converted,
        sum(revenue) as revenue
    from entry_results
    where arm_group = 'treatment'
    group by campaign_id, variant

    union all

    select
        campaign_id,
        'all' as variant,
        count(*),
        sum(was_sent),
        sum(was_delivered),
        sum(was_opened),
        sum(was_clicked),
        sum(converted),
        sum(revenue)
    from entry_results
    where arm_group = 'treatment'
    group by campaign_id

),

control as (

    select
        campaign_id,
        count(*) as control_entries,
        sum(converted) as control_converted,
        sum(revenue) as control_revenue
    from entry_results
    where arm_group = 'control'
    group by campaign_id

),

rates as (

    select
        treatment_rows.*,
        coalesce(control.control_entries, 0) as control_entries,
        coalesce(control.control_converted, 0) as control_converted,
        coalesce(control.control_revenue, 0) as control_revenue,
        cast(treatment_rows.converted as {{ dbt.type_numeric() }})
            / nullif(treatment_rows.entries, 0) as p_treatment,
        cast(control.control_converted as {{ dbt.type_numeric() }})
            / nullif(control.control_entries, 0) as p_control
    from treatment_rows
    left join control
        on control.campaign_id = treatment_rows.campaign_id

),

lift as (

    select
        rates.*,
        p_treatment - p_control as rate_difference,
        sqrt(
            p_treatment * (1 - p_treatment) / entries
            + p_control * (1 - p_control) / nullif(control_entries, 0)
        ) as standard_error
    from rates

),

final as (

    select
        campaign_id,
        variant,
        entries,
        sent,
        delivered,
        opened,
        clicked,
        converted,
        revenue,
        round(p_treatment, 6) as conversion_rate,
        round(cast(revenue as {{ dbt.type_numeric() }}) / nullif(entries, 0), 2) as revenue_per_entry,
        control_entries,
        control_converted,
        control_revenue,
        round(p_control, 6) as control_conversion_rate,
        round(
            cast(control_revenue as {{ dbt.type_numeric() }}) / nullif(control_entries, 0), 2
        ) as control_revenue_per_entry,
        round(rate_difference, 6) as lift,
        round(standard_error, 6) as lift_standard_error,
        round(rate_difference - 1.959964 * standard_error, 6) as lift_ci_low,
        round(rate_difference + 1.959964 * standard_error, 6) as lift_ci_high,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from lift

)

select * from final

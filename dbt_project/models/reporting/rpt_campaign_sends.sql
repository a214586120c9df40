{#-
    Campaign delivery report per campaign and trigger window: audience decisions, outbox
    results and SendGrid engagement (matched through the send_id custom arg). Engagement
    columns count distinct messages with at least one such event. No e-mail addresses.
-#}

with

decisions as (

    select * from {{ ref('stg_activation__campaign_decisions') }}

),

sends as (

    select * from {{ ref('stg_activation__campaign_sends') }}

),

email_events as (

    select * from {{ ref('stg_sendgrid__events') }}

),

campaign_windows as (

    select campaign_id, trigger_window from decisions
    union
    select campaign_id, trigger_window from sends

),

decision_counts as (

    select
        campaign_id,
        trigger_window,
        sum(n_profiles) as audience_profiles,
        sum(case when decision = 'send' then n_profiles else 0 end) as decided_send,
        sum(case when decision = 'held' then n_profiles else 0 end) as decided_held,
        sum(case when decision = 'suppressed' then n_profiles else 0 end) as decided_suppressed,
        sum(case when decision = 'holdout' then n_profiles else 0 end) as decided_holdout,
        {{ dbt.listagg(
            dbt.concat(["decision", "'/'", "decision_reason", "'='", "cast(n_profiles as " ~ dbt.type_string() ~ ")"]),
            "', '",
            'order by decision, decision_reason'
        ) }} as decisions_by_reason
    from (
        select
            campaign_id,
            trigger_window,
            decision,
            decision_reason,
            count(*) as n_profiles
        from decisions
        group by campaign_id, trigger_window, decision, decision_reason
    ) as by_reason
    group by campaign_id, trigger_window

),

engagement_per_send as (

    select
        send_id,
        max(case when event_type = 'delivered' then 1 else 0 end) as was_delivered,
        max(case when event_type = 'open' then 1 else 0 end) as was_opened,
        max(case when event_type = 'click' then 1 else 0 end) as was_clicked,
        max(case when event_type = 'bounce' then 1 else 0 end) as was_bounced,
        max(case when event_type in ('unsubscribe', 'group_unsubscribe') then 1 else 0 end)
            as was_unsubscribed,
        max(case when event_type = 'spamreport' then 1 else 0 end) as was_spam_reported
    from email_events
    where send_id is not null
    group by send_id

),

send_counts as (

    select
        sends.campaign_id,
        sends.trigger_window,
        count(*) as messages_queued,
        sum(case when sends.send_status = 'sent' then 1 else 0 end) as messages_sent,
        sum(case when sends.send_status = 'failed' then 1 else 0 end) as messages_failed,
        sum(case when sends.send_status = 'pending' then 1 else 0 end) as messages_pending,
        sum(case when sends.send_status = 'sending' then 1 else 0 end) as messages_in_doubt,
        sum(case when sends.send_status = 'expired' then 1 else 0 end) as messages_expired,
        sum(coalesce(engagement_per_send.was_delivered, 0)) as delivered,
        sum(coalesce(engagement_per_send.was_opened, 0)) as opens,
        sum(coalesce(engagement_per_send.was_clicked, 0)) as clicks,
        sum(coalesce(engagement_per_send.was_bounced, 0)) as bounces,
        sum(coalesce(engagement_per_send.was_unsubscribed, 0)) as unsubscribes,
        sum(coalesce(engagement_per_send.was_spam_reported, 0)) as spam_reports
    from sends
    left join engagement_per_send
        on engagement_per_send.send_id = sends.send_id
    group by sends.campaign_id, sends.trigger_window

),

final as (

    select
        campaign_windows.campaign_id,
        campaign_windows.trigger_window,
        cast(coalesce(decision_counts.audience_profiles, 0) as bigint) as audience_profiles,
        cast(coalesce(decision_counts.decided_send, 0) as bigint) as decided_send,
        cast(coalesce(decision_counts.decided_held, 0) as bigint) as decided_held,
        cast(coalesce(decision_counts.decided_suppressed, 0) as bigint) as decided_suppressed,
        cast(coalesce(decision_counts.decided_holdout, 0) as bigint) as decided_holdout,
        decision_counts.decisions_by_reason,
        coalesce(send_counts.messages_queued, 0) as messages_queued,
        coalesce(send_counts.messages_sent, 0) as messages_sent,
        coalesce(send_counts.messages_failed, 0) as messages_failed,
        coalesce(send_counts.messages_pending, 0) as messages_pending,
        coalesce(send_counts.messages_in_doubt, 0) as messages_in_doubt,
        coalesce(send_counts.messages_expired, 0) as messages_expired,
        coalesce(send_counts.delivered, 0) as delivered,
        coalesce(send_counts.opens, 0) as opens,
        coalesce(send_counts.clicks, 0) as clicks,
        coalesce(send_counts.bounces, 0) as bounces,
        coalesce(send_counts.unsubscribes, 0) as unsubscribes,
        coalesce(send_counts.spam_reports, 0) as spam_reports,
        round(
            cast(send_counts.opens as {{ dbt.type_numeric() }}) / nullif(send_counts.delivered, 0), 4
        ) as open_rate,
        round(
            cast(send_counts.clicks as {{ dbt.type_numeric() }}) / nullif(send_counts.delivered, 0), 4
        ) as click_rate,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from campaign_windows
    left join decision_counts
        on decision_counts.campaign_id = campaign_windows.campaign_id
        and decision_counts.trigger_window = campaign_windows.trigger_window
    left join send_counts
        on send_counts.campaign_id = campaign_windows.campaign_id
        and send_counts.trigger_window = campaign_windows.trigger_window

)

select * from final

-- Outbox and decision log for campaign activation; created idempotently before each run.
create schema if not exists activation;

create table if not exists activation.campaign_decisions (
    campaign_id     text        not null,
    profile_id      text        not null,
    trigger_window  date        not null,
    decision        text        not null check (decision in ('send', 'suppressed', 'holdout')),
    reason          text        not null,
    run_id          text        not null,
    decided_at      timestamptz not null default now(),
    primary key (campaign_id, profile_id, trigger_window)
);

create table if not exists activation.campaign_sends (
    send_id         text        primary key,
    campaign_id     text        not null,
    profile_id      text        not null,
    trigger_window  date        not null,
    email           text        not null,
    template_id     text        not null,
    status          text        not null check (status in ('pending', 'sending', 'sent', 'failed')),
    attempts        integer     not null default 0,
    sg_message_id   text,
    error           text,
    run_id          text        not null,
    created_at      timestamptz not null default now(),
    sent_at         timestamptz,
    unique (campaign_id, profile_id, trigger_window)
);

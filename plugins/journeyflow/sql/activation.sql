-- Campaign activation state, created idempotently before each run (and upgraded in place).
create schema if not exists activation;

-- The campaigns as last declared in the campaigns file (read by the reporting layer).
create table if not exists activation.campaigns (
    campaign_id             text        primary key,
    description             text        not null default '',
    priority                integer     not null,
    marketing               boolean     not null,
    trigger_kind            text        not null,
    holdout_percent         numeric     not null,
    goal_touchpoint_type    text        not null,
    attribution_days        integer     not null,
    definition              jsonb       not null
);

-- One row per campaign x profile x trigger window: the decision and why. The first decision
-- for a key sticks: re-running a run never changes it.
create table if not exists activation.campaign_decisions (
    campaign_id     text        not null,
    profile_id      text        not null,
    trigger_window  date        not null,
    decision        text        not null,
    reason          text        not null,
    run_id          text        not null,
    decided_at      timestamptz not null default now(),
    primary key (campaign_id, profile_id, trigger_window)
);
alter table activation.campaign_decisions
    add column if not exists arm text,
    add column if not exists variant text,
    add column if not exists send_id text,
    add column if not exists decided_for timestamptz;

-- Holdout and variant assignment per campaign (and the global control group, campaign_id
-- '_global_control'): hashed once, stored, never re-rolled.
create table if not exists activation.campaign_assignments (
    campaign_id     text        not null,
    profile_id      text        not null,
    arm             text        not null check (arm in ('treatment', 'holdout', 'global_control')),
    variant         text,
    run_id          text        not null,
    assigned_at     timestamptz not null default now(),
    primary key (campaign_id, profile_id)
);

-- Audience spells of `sql` triggers: a person's trigger window is the day they entered the
-- audience; leaving it closes the spell, so "again after exit" opens a new window.
create table if not exists activation.campaign_audience_spells (
    campaign_id     text        not null,
    profile_id      text        not null,
    entered_on      date        not null,
    last_seen_on    date        not null,
    exited_on       date,
    primary key (campaign_id, profile_id, entered_on)
);
create unique index if not exists campaign_audience_spells_open
    on activation.campaign_audience_spells (campaign_id, profile_id) where exited_on is null;

-- Outbox: one row per message, written before the SendGrid call. send_id is the idempotency
-- key (campaign, profile, trigger window); batch_id tags the request that carried it, so a
-- request whose answer was lost can be looked up in SendGrid's Email Activity.
-- status: pending -> sending (committed before the call) -> sent | failed; pending -> expired.
create table if not exists activation.campaign_sends (
    send_id         text        primary key,
    campaign_id     text        not null,
    profile_id      text        not null,
    trigger_window  date        not null,
    email           text        not null,
    template_id     text        not null,
    status          text        not null,
    attempts        integer     not null default 0,
    sg_message_id   text,
    error           text,
    run_id          text        not null,
    created_at      timestamptz not null default now(),
    sent_at         timestamptz,
    unique (campaign_id, profile_id, trigger_window)
);
alter table activation.campaign_sends
    add column if not exists variant text,
    add column if not exists template_data jsonb not null default '{}',
    add column if not exists marketing boolean not null default true,
    add column if not exists decided_for timestamptz,
    add column if not exists send_at timestamptz,
    add column if not exists batch_id text,
    add column if not exists claimed_at timestamptz;
create index if not exists campaign_sends_by_profile
    on activation.campaign_sends (profile_id, decided_for);
create index if not exists campaign_sends_pending
    on activation.campaign_sends (campaign_id, template_id, send_id) where status = 'pending';
create index if not exists campaign_sends_in_doubt
    on activation.campaign_sends (campaign_id, batch_id) where status = 'sending';

-- Tombstones of people who asked to be erased (the erase_person DAG): never stitched, loaded
-- or contacted again. Only the SHA-256 (hex) of the normalised value is kept, so the person's
-- identifiers appear nowhere in the warehouse; compare with
-- encode(sha256(convert_to(<normalised value>, 'UTF8')), 'hex').
create table if not exists activation.erased_identifiers (
    identifier_type     text        not null,
    identifier_digest   text        not null,
    erased_at           timestamptz not null default now(),
    request_id          text,
    primary key (identifier_type, identifier_digest)
);

-- Allowed values (named constraints, replaced when an older definition is found).
do $$
begin
    if not exists (
        select 1 from pg_constraint where conname = 'campaign_decisions_decision_v2'
    ) then
        alter table activation.campaign_decisions
            drop constraint if exists campaign_decisions_decision_check,
            add constraint campaign_decisions_decision_v2
                check (decision in ('send', 'held', 'suppressed', 'holdout'));
    end if;
    if not exists (select 1 from pg_constraint where conname = 'campaign_sends_status_v2') then
        alter table activation.campaign_sends
            drop constraint if exists campaign_sends_status_check,
            add constraint campaign_sends_status_v2
                check (status in ('pending', 'sending', 'sent', 'failed', 'expired'));
    end if;
    -- tombstones once held the value itself: keep only its digest
    if exists (
        select 1 from information_schema.columns where table_schema = 'activation'
            and table_name = 'erased_identifiers' and column_name = 'identifier_value'
    ) then
        alter table activation.erased_identifiers
            add column if not exists identifier_digest text,
            add column if not exists request_id text;
        update activation.erased_identifiers
            set identifier_digest = encode(sha256(convert_to(identifier_value, 'UTF8')), 'hex');
        -- dropping the column drops the primary key that included it
        alter table activation.erased_identifiers drop column identifier_value;
        alter table activation.erased_identifiers
            alter column identifier_digest set not null,
            add primary key (identifier_type, identifier_digest);
    end if;
    if not exists (select 1 from pg_constraint where conname = 'erased_identifiers_type_v2') then
        alter table activation.erased_identifiers
            drop constraint if exists erased_identifiers_identifier_type_check,
            add constraint erased_identifiers_type_v2 check (identifier_type in
                ('profile_id', 'email', 'user_id', 'crm_id', 'phone', 'anonymous_id'));
    end if;
end
$$;

-- Erasure requests (the erase_person DAG), created idempotently before each request.
create schema if not exists ops;
create schema if not exists activation;

-- Audit: one row per request. The identifier is kept only as SHA-256 of 'type:value'.
create table if not exists ops.erasure_requests (
    request_id              text        primary key,
    identifier_type         text        not null,
    identifier_digest       text        not null,
    requested_at            timestamptz not null default now(),
    tombstoned_at           timestamptz,
    erased_at               timestamptz,
    suppressed_at           timestamptz,
    profiles_erased         integer     not null default 0,
    identifiers_tombstoned  integer     not null default 0,
    emails_to_suppress      integer     not null default 0,
    rows_affected           jsonb       not null default '{}'
);

-- Outbox of SendGrid global suppressions: written with the tombstones, before anything is
-- deleted. The address is needed until SendGrid has it; once suppressed only its digest stays.
create table if not exists activation.erasure_suppressions (
    email_digest    text        primary key,
    email           text,
    request_id      text        not null,
    status          text        not null default 'pending'
        check (status in ('pending', 'suppressed')),
    attempts        integer     not null default 0,
    error           text,
    created_at      timestamptz not null default now(),
    suppressed_at   timestamptz,
    check ((status = 'pending') = (email is not null))
);

{#-
    Every e-mail address as people typed it (normalised, not yet in its matching form), with
    when it was last seen on a CRM contact, web event, order or support ticket
    (email_spelling_sources). int_customer_profiles writes to the address a person used
    last, and reads it here instead of every source's records on every run.

    Incremental (macros/source_increment.sql, record counts shared with int_identity_edges):
    while records are only added, the latest sighting of each address among the records
    loaded since the previous run is merged into the stored one. When records went away
    every address is recomputed, only addresses that appeared or changed are written
    (stamped changed_at), and an address no record holds any more is written with no
    last_seen_at and then deleted by the post-hook.
-#}

{{ config(
    materialized='incremental',
    unique_key='email',
    incremental_strategy='delete+insert',
    pre_hook=["{{ source_increment_state_create_sql(this) }}"],
    post_hook=[
        "delete from {{ this }} where last_seen_at is null",
        "{{ source_increment_state_record_sql(this, email_spelling_sources()) }}",
        "{{ identity_analyze_sql(this) }}",
    ],
    indexes=[{'columns': ['email'], 'unique': True}],
) }}

{#- runs after the edges (a dependency), whose record counts of this run it uses -#}
{%- set plan = source_increment_plan(email_spelling_sources(), 'spelling', ref('int_identity_edges')) %}

with

sightings as (

    select email, updated_at as seen_at
    from {{ ref('stg_crm__contacts') }} as crm_contacts{{ source_increment_new_records(plan, 'crm', 'crm_contacts') }}

    union all

    select email, occurred_at
    from {{ ref('stg_web__events') }} as web_events{{ source_increment_new_records(plan, 'web', 'web_events') }}

    union all

    select customer_email, ordered_at
    from {{ ref('stg_shop__orders') }} as orders{{ source_increment_new_records(plan, 'shop', 'orders') }}

    union all

    select requester_email, opened_at
    from {{ ref('stg_support__tickets') }} as tickets{{ source_increment_new_records(plan, 'support', 'tickets') }}

),

latest_sightings as (

    select
        email,
        max(seen_at) as last_seen_at
    from sightings
    where email is not null
    group by email

),

{% if plan is not none %}

-- the new records' latest sightings merged into the stored ones
changed as (

    select
        latest_sightings.email,
        greatest(latest_sightings.last_seen_at, stored.last_seen_at) as last_seen_at
    from latest_sightings
    left join {{ this }} as stored
        on stored.email = latest_sightings.email
    where stored.last_seen_at is null
        or latest_sightings.last_seen_at > stored.last_seen_at

),

{% elif is_incremental() %}

-- addresses that appeared or changed, and those no record holds any more (no last_seen_at)
changed as (

    select
        coalesce(latest_sightings.email, stored.email) as email,
        latest_sightings.last_seen_at
    from latest_sightings
    full outer join {{ this }} as stored
        on stored.email = latest_sightings.email
    where stored.email is null
        or latest_sightings.email is null
        or latest_sightings.last_seen_at <> stored.last_seen_at

),

{% else %}

changed as (

    select * from latest_sightings

),

{% endif %}

final as (

    select
        email,
        last_seen_at,
        {{ build_timestamp() }} as changed_at
    from changed

)

select * from final

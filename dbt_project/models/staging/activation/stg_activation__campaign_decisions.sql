with

source as (

    select * from {{ source('activation', 'campaign_decisions') }}

),

renamed as (

    select
        -- ids
        {{ dbt.hash(dbt.concat(["campaign_id", "'|'", "profile_id", "'|'", "cast(trigger_window as " ~ dbt.type_string() ~ ")"])) }} as campaign_decision_id,
        campaign_id,
        profile_id,
        send_id,
        run_id,

        -- decision
        trigger_window,
        decision,
        reason as decision_reason,
        arm,
        variant,

        -- timestamps
        decided_for,
        decided_at

    from source

)

select * from renamed

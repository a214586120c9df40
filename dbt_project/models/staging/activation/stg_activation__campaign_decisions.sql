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
        run_id,

        -- decision
        trigger_window,
        decision,
        reason as decision_reason,

        -- timestamps
        decided_at

    from source

)

select * from renamed

with

source as (

    select * from {{ source('activation', 'campaign_sends') }}

),

renamed as (

    select
        -- ids
        send_id,
        campaign_id,
        profile_id,
        run_id,
        batch_id,
        sg_message_id,

        -- message (the recipient address and template data are intentionally not carried over)
        trigger_window,
        template_id,
        variant,
        marketing as is_marketing,
        status as send_status,
        attempts,
        error as send_error,

        -- timestamps
        decided_for,
        send_at as scheduled_for,
        created_at,
        claimed_at,
        sent_at

    from source

)

select * from renamed

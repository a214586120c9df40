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
        sg_message_id,

        -- message (the recipient address is intentionally not carried over)
        trigger_window,
        template_id,
        status as send_status,
        attempts,
        error as send_error,

        -- timestamps
        created_at,
        sent_at

    from source

)

select * from renamed

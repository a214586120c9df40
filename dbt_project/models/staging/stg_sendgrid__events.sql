with

source as (

    select * from {{ source('raw', 'email_events') }}

),

renamed as (

    select
        -- ids
        sg_event_id as email_event_id,
        sg_message_id,
        nullif(trim(campaign_id), '') as campaign_id,
        nullif(trim(send_id), '') as send_id,

        -- identifiers
        {{ normalize_email('email') }} as email,

        -- event
        lower(trim(event)) as event_type,

        -- timestamps
        {{ adapter.quote('timestamp') }} as occurred_at,

        -- load metadata
        _batch_id as batch_id,
        _loaded_at as loaded_at

    from source

)

select * from renamed

with

source as (

    select * from {{ source('raw', 'support_tickets') }}

),

renamed as (

    select
        -- ids
        ticket_id,

        -- identifiers
        {{ normalize_email('requester_email') }} as requester_email,

        -- ticket
        lower(trim(status)) as ticket_status,
        lower(trim(status)) <> 'solved' as is_open,
        lower(nullif(trim(channel), '')) as support_channel,
        subject,

        -- timestamps
        opened_at,
        solved_at,

        -- load metadata
        _batch_id as batch_id,
        _loaded_at as loaded_at

    from source

)

select * from renamed

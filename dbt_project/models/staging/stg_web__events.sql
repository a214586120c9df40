with

source as (

    select * from {{ source('raw', 'web_events') }}

),

renamed as (

    select
        -- ids
        event_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,

        -- identifiers
        {{ normalize_email('email') }} as email,

        -- event
        lower(trim(event)) as event_name,
        url as page_url,
        lower(nullif(trim(device), '')) as device,

        -- timestamps
        ts as occurred_at,

        -- load metadata
        _batch_id as batch_id,
        _loaded_at as loaded_at

    from source

)

select * from renamed

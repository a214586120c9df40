with

source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        -- ids
        order_id,

        -- identifiers
        {{ normalize_email('customer_email') }} as customer_email,

        -- amounts
        amount as order_amount,
        upper(nullif(trim(currency), '')) as currency,

        -- status
        lower(trim(status)) as order_status,
        lower(trim(status)) = 'completed' as is_completed,

        -- timestamps
        ts as ordered_at,

        -- load metadata
        _batch_id as batch_id,
        _loaded_at as loaded_at

    from source

)

select * from renamed

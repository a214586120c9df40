with

source as (

    select * from {{ source('raw', 'crm_contacts') }}

),

renamed as (

    select
        -- ids
        crm_id,
        nullif(trim(user_id), '') as user_id,

        -- identifiers
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone', 'country') }} as phone,

        -- attributes
        first_name,
        upper(nullif(trim(country), '')) as country,
        email_consent,

        -- timestamps
        updated_at,

        -- load metadata
        _batch_id as batch_id,
        _loaded_at as loaded_at

    from source

)

select * from renamed

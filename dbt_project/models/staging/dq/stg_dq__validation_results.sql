with

source as (

    select * from {{ source('dq', 'validation_results') }}

),

renamed as (

    select
        -- ids
        run_id as validated_run_id,
        gate,
        table_name,

        -- check
        expectation,
        column_name,
        success,
        severity,
        unexpected_count,

        -- timestamps
        validated_at

    from source

)

select * from renamed

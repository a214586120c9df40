with

source as (

    select * from {{ source('activation', 'campaigns') }}

),

renamed as (

    select
        -- ids
        campaign_id,

        -- declaration
        description as campaign_description,
        priority,
        marketing as is_marketing,
        trigger_kind,
        holdout_percent,

        -- measurement
        goal_touchpoint_type,
        attribution_days

    from source

)

select * from renamed

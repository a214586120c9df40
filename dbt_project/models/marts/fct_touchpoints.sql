{#- One row per touchpoint attributed to a profile. -#}

with

touchpoints as (

    select * from {{ ref('int_touchpoints_unioned') }}

),

final as (

    select
        touchpoint_id,
        profile_id,
        source,
        channel,
        touchpoint_type,
        occurred_at,
        amount,
        source_record_id,
        campaign_id,
        identifier_type
    from touchpoints
    where profile_id is not null

)

select * from final

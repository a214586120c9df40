{#-
    One row per touchpoint attributed to a profile. A view over the incremental
    int_touchpoints_unioned: restated touchpoints show here the moment that model is
    written, and the warehouse keeps one copy of the biggest table instead of two.
-#}

{{ config(materialized='view') }}

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

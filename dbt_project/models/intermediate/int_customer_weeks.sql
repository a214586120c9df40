{#-
    One row per profile and ISO week (Monday start, UTC) with a touchpoint: how many, and how
    many completed orders (rpt_kpi_trends counts active and ordering customers from it).
    Incremental by profile from its rebuild_from on (profile_tail_replace on week_ends_at):
    the weeks that ended before it are kept, so a run reads the listed profiles' recent
    touchpoints only instead of grouping every touchpoint by customer and week.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='profile_tail_replace',
    profile_tail_column='week_ends_at',
    indexes=[{'columns': ['profile_id']}],
) }}
{%- set scope = profile_rebuild_scope() %}

with

touchpoints as (

    select touchpoints.profile_id, touchpoints.touchpoint_type, touchpoints.occurred_at
    from {{ ref('fct_touchpoints') }} as touchpoints
    {%- if scope is not none %}
    {#- every touchpoint of a week ending at or after rebuild_from is at most 7 days before it #}
    inner join {{ scope }} as listed
        on listed.profile_id = touchpoints.profile_id
        and touchpoints.occurred_at >= listed.rebuild_from - interval '7 days'
    {%- endif %}
    where true {{ profile_rebuild_filter(scope, 'touchpoints.profile_id') }}

),

grouped as (

    select
        {{ week_start(utc_date('occurred_at')) }} as week_start,
        profile_id,
        count(*) as touchpoints,
        sum(case when touchpoint_type = 'order_completed' then 1 else 0 end) as orders
    from touchpoints
    group by {{ week_start(utc_date('occurred_at')) }}, profile_id

),

weeks as (

    select *, {{ utc_midnight(dbt.dateadd('day', 7, 'week_start')) }} as week_ends_at
    from grouped

),

final as (

    select
        week_start,
        week_ends_at,
        profile_id,
        cast(touchpoints as integer) as touchpoints,
        cast(orders as integer) as orders
    from weeks
    where true {{ profile_rebuild_tail_filter(scope, 'weeks', 'week_ends_at') }}

)

select * from final

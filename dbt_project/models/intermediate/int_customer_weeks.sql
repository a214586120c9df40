{#-
    One row per profile and ISO week (Monday start, UTC) with a touchpoint: how many, and how
    many completed orders (rpt_kpi_trends counts active and ordering customers from it).
    Incremental by profile from its rebuild_from on (profile_tail_replace on week_ends_at):
    the weeks that ended before it are kept, so a run reads the listed profiles' touchpoints
    only, and groups their recent weeks only, instead of every touchpoint by customer and week.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='profile_tail_replace',
    profile_tail_column='week_ends_at',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['profile_id']}, {'columns': ['rebuilt_at']}],
    post_hook="{{ identity_analyze_sql(this) }}",
) }}
{%- set scope = profile_rebuild_scope() %}

with

touchpoints as (

    select
        profile_id,
        touchpoint_type,
        occurred_at,
        {{ week_start(utc_date('occurred_at')) }} as week_start
    from {{ ref('fct_touchpoints') }}
    where true {{ profile_rebuild_filter(scope) }}

),

touchpoint_weeks as (

    select
        touchpoints.profile_id,
        touchpoints.touchpoint_type,
        touchpoints.week_start,
        {{ utc_midnight(dbt.dateadd('day', 7, 'touchpoints.week_start')) }} as week_ends_at
    from touchpoints
    {%- if scope is not none %}
    {#- the weeks to recompute (a join: the listed profiles are already found by index);
        a week that ends at or after rebuild_from holds no touchpoint earlier than 7 days
        before it, and that cheap comparison spares most touchpoints the week's end #}
    inner join {{ scope }} as listed
        on listed.profile_id = touchpoints.profile_id
        and touchpoints.occurred_at >= {{ dbt.dateadd('day', -7, 'listed.rebuild_from') }}
        and {{ utc_midnight(dbt.dateadd('day', 7, 'touchpoints.week_start')) }} >= listed.rebuild_from
    {%- endif %}

),

final as (

    select
        week_start,
        week_ends_at,
        profile_id,
        cast(count(*) as integer) as touchpoints,
        cast(sum(case when touchpoint_type = 'order_completed' then 1 else 0 end) as integer) as orders,
        {{ build_timestamp() }} as rebuilt_at
    from touchpoint_weeks
    group by week_start, week_ends_at, profile_id

)

select * from final

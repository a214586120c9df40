{#-
    Attempts at the ordered funnels of var('funnels'), one row per profile per attempt. An
    attempt starts at a touchpoint of the funnel's first step that lies outside every earlier
    attempt's window, and its window closes window_days later; the next attempt starts at
    the first step-1 touchpoint at or after that. Touchpoints after the as-of time are not
    seen yet.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='profile_replace',
        indexes=[{'columns': ['profile_id']}],
        pre_hook="{{ episode_session_settings() }}",
        post_hook="{{ identity_analyze_sql(this) }}",
    )
}}
{%- set scope = profile_rebuild_scope() %}
{%- set funnels = funnel_definitions() %}

with recursive

touchpoints as (
    {{ touchpoints_until_as_of(['touchpoint_id', 'profile_id', 'touchpoint_type', 'occurred_at'], scope) }}
),

first_steps as (
    {%- for funnel in funnels %}

    select
        cast('{{ funnel.name }}' as {{ dbt.type_string() }}) as funnel,
        profile_id,
        touchpoint_id,
        occurred_at,
        {{ dbt.dateadd('day', funnel.window_days, 'occurred_at') }} as window_ends_at
    from touchpoints
    where touchpoint_type = '{{ funnel.steps[0] }}'
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

candidates as (

    select
        funnel,
        profile_id,
        touchpoint_id as start_touchpoint_id,
        occurred_at as started_at,
        window_ends_at as ended_at,
        false as is_final,
        row_number() over (
            partition by funnel, profile_id
            order by occurred_at, touchpoint_id
        ) as entry_number
    from first_steps

),

{{ next_entry_pointers('candidates', 'funnel', 'attempt', ['start_touchpoint_id', 'started_at', 'ended_at', 'is_final']) }},

final as (

    select
        attempt_id,
        funnel,
        profile_id,
        attempt_number,
        start_touchpoint_id,
        started_at,
        ended_at as window_ends_at
    from attempt_chosen

)

select * from final

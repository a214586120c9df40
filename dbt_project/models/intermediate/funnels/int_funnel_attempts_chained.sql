{#-
    Attempts at the ordered funnels of var('funnels'), one row per profile per attempt. An
    attempt starts at a touchpoint of the funnel's first step that lies outside every earlier
    attempt's window, and its window closes window_days later; the next attempt starts at
    the first step-1 touchpoint at or after that. Touchpoints after the as-of time are not
    seen yet. Each profile's step-1 touchpoints are gathered into sorted arrays in one pass
    over the touchpoints, and the attempts chained by binary search in them
    (chained_attempts, with no goal: every attempt runs its whole window).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='profile_replace',
        indexes=[{'columns': ['profile_id']}],
        post_hook="{{ identity_analyze_sql(this) }}",
    )
}}
{%- set scope = profile_rebuild_scope() %}
{%- set funnels = funnel_definitions() %}

with recursive

touchpoints as (
    {{ touchpoints_until_as_of(['touchpoint_id', 'profile_id', 'touchpoint_type', 'occurred_at'], scope) }}
),

{#- per profile and funnel: the step-1 touchpoints in order -#}
profile_first_steps as (

    select
        profile_id
        {%- for funnel in funnels %},
        array_agg(occurred_at order by occurred_at, touchpoint_id)
            filter (where touchpoint_type = '{{ funnel.steps[0] }}') as entry_times_{{ loop.index }},
        array_agg(touchpoint_id order by occurred_at, touchpoint_id)
            filter (where touchpoint_type = '{{ funnel.steps[0] }}') as entry_ids_{{ loop.index }}
        {%- endfor %}
    from touchpoints
    where touchpoint_type in ('{{ funnels | map(attribute="steps") | map("first") | unique | join("', '") }}')
    group by profile_id

),

funnel_entries as (
    {%- for funnel in funnels %}

    select
        cast('{{ funnel.name }}' as {{ dbt.type_string() }}) as funnel,
        profile_id,
        entry_times_{{ loop.index }} as entry_times,
        entry_ids_{{ loop.index }} as entry_ids,
        cast(null as timestamp with time zone[]) as goal_times,  -- occurred_at's type
        interval '{{ funnel.window_days }} days' as timeout,
        interval '0 microsecond' as goal_offset,
        true as is_repeatable
    from profile_first_steps
    where entry_times_{{ loop.index }} is not null
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

{{ chained_attempts('funnel_entries', 'funnel', 'attempt') }},

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

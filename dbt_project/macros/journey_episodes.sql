{#-
    Goal journeys and ordered funnels, declared in dbt_project.yml (vars `journeys` and
    `funnels`): validation of the declarations and the SQL building blocks generated from them.
-#}

{#- Stop compilation with a message naming the var and the offending entry. -#}
{% macro _config_error(var_name, position, message) -%}
    {{ exceptions.raise_compiler_error(
        "var('" ~ var_name ~ "') entry " ~ position ~ ": " ~ message
    ) }}
{%- endmacro %}

{#- A name or touchpoint type: lower-case letters, digits and underscores. -#}
{% macro _is_identifier(value) -%}
    {{ return(value is string and modules.re.match('^[a-z][a-z0-9_]*$', value) is not none) }}
{%- endmacro %}

{#- A list of touchpoint types from a string or a list of strings; '*' allowed when wildcard. -#}
{% macro _event_list(var_name, position, key, value, wildcard=false) -%}
    {%- set events = [value] if value is string else value -%}
    {%- if events is none or events is mapping or events is string or events | length == 0 -%}
        {{ _config_error(var_name, position, key ~ " must be a touchpoint type or a non-empty list of them") }}
    {%- endif -%}
    {%- for event in events -%}
        {%- if not (wildcard and event == '*') and not _is_identifier(event) -%}
            {{ _config_error(var_name, position, key ~ " has an invalid touchpoint type " ~ event
                ~ " (lower-case letters, digits, underscores" ~ (", or '*' for any" if wildcard else "") ~ ")") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(events | list) }}
{%- endmacro %}

{#- A positive whole number of days. -#}
{% macro _positive_days(var_name, position, key, value) -%}
    {%- if value is not number or value is sameas true or value is sameas false
        or value != (value | int) or value < 1 -%}
        {{ _config_error(var_name, position, key ~ " must be a whole number of days >= 1, got " ~ value) }}
    {%- endif -%}
    {{ return(value | int) }}
{%- endmacro %}

{#- The entries of a list var, each a mapping with a unique, valid name and known keys only. -#}
{% macro _named_entries(var_name, allowed_keys) -%}
    {%- set entries = var(var_name, none) -%}
    {%- if entries is none or entries is string or entries is mapping or entries | length == 0 -%}
        {{ exceptions.raise_compiler_error("var('" ~ var_name ~ "') must be a non-empty list") }}
    {%- endif -%}
    {%- set names = [] -%}
    {%- for entry in entries -%}
        {%- if entry is not mapping -%}
            {{ _config_error(var_name, loop.index, "must be a mapping") }}
        {%- endif -%}
        {%- set position = loop.index ~ " (" ~ entry.get('name') ~ ")" -%}
        {%- for key in entry -%}
            {%- if key not in allowed_keys -%}
                {{ _config_error(var_name, position, "unknown key " ~ key ~ "; allowed: " ~ allowed_keys | join(', ')) }}
            {%- endif -%}
        {%- endfor -%}
        {%- if not _is_identifier(entry.get('name')) -%}
            {{ _config_error(var_name, position, "name must be lower-case letters, digits and underscores") }}
        {%- endif -%}
        {%- if entry.name in names -%}
            {{ _config_error(var_name, position, "duplicate name " ~ entry.name) }}
        {%- endif -%}
        {%- do names.append(entry.name) -%}
    {%- endfor -%}
    {{ return(entries) }}
{%- endmacro %}

{#-
    The validated journeys: name, entry_events, entry_is_any, goal_events, steps,
    timeout_days, repeatable.
-#}
{% macro journey_definitions() -%}
    {%- set allowed = ['name', 'entry_event', 'goal_event', 'steps', 'timeout_days', 'repeatable'] -%}
    {%- set journeys = [] -%}
    {%- for entry in _named_entries('journeys', allowed) -%}
        {%- set position = loop.index ~ " (" ~ entry.name ~ ")" -%}
        {%- set entry_events = _event_list('journeys', position, 'entry_event', entry.get('entry_event'), wildcard=true) -%}
        {%- if '*' in entry_events and entry_events | length > 1 -%}
            {{ _config_error('journeys', position, "entry_event '*' (any touchpoint) cannot be combined with other types") }}
        {%- endif -%}
        {%- set repeatable = entry.get('repeatable', true) -%}
        {%- if repeatable is not sameas true and repeatable is not sameas false -%}
            {{ _config_error('journeys', position, "repeatable must be true or false") }}
        {%- endif -%}
        {%- do journeys.append({
            'name': entry.name,
            'entry_events': entry_events,
            'entry_is_any': '*' in entry_events,
            'goal_events': _event_list('journeys', position, 'goal_event', entry.get('goal_event')),
            'steps': _event_list('journeys', position, 'steps', entry.steps) if entry.get('steps') is not none else [],
            'timeout_days': _positive_days('journeys', position, 'timeout_days', entry.get('timeout_days')),
            'repeatable': repeatable,
        }) -%}
    {%- endfor -%}
    {{ return(journeys) }}
{%- endmacro %}

{#- The validated funnels: name, steps (at least two), window_days. -#}
{% macro funnel_definitions() -%}
    {%- set funnels = [] -%}
    {%- for entry in _named_entries('funnels', ['name', 'steps', 'window_days']) -%}
        {%- set position = loop.index ~ " (" ~ entry.name ~ ")" -%}
        {%- set steps = _event_list('funnels', position, 'steps', entry.get('steps')) -%}
        {%- if steps | length < 2 -%}
            {{ _config_error('funnels', position, "steps must list at least two touchpoint types") }}
        {%- endif -%}
        {%- do funnels.append({
            'name': entry.name,
            'steps': steps,
            'window_days': _positive_days('funnels', position, 'window_days', entry.get('window_days')),
        }) -%}
    {%- endfor -%}
    {{ return(funnels) }}
{%- endmacro %}

{#- `column in ('a', 'b')`, or true for the wildcard '*'. Types are validated identifiers. -#}
{% macro touchpoint_type_in(column, events) -%}
    {%- if '*' in events -%}
        1 = 1
    {%- else -%}
        {{ column }} in ('{{ events | join("', '") }}')
    {%- endif -%}
{%- endmacro %}

{#- One row per journey with its settings, as a select of literals (a CTE body). -#}
{% macro journey_settings_rows(journeys) -%}
    {%- for journey in journeys %}
    select
        cast('{{ journey.name }}' as {{ dbt.type_string() }}) as journey,
        {{ journey.timeout_days }} as timeout_days,
        {{ 'true' if journey.repeatable else 'false' }} as is_repeatable,
        {{ 'true' if journey.entry_is_any else 'false' }} as entry_is_any,
        {{ journey.steps | length }} as step_count
    {%- if not loop.last %}
    union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- One row per funnel step: funnel, step_number, step, steps in the funnel, window. -#}
{% macro funnel_step_rows(funnels) -%}
    {%- for funnel in funnels %}
    {%- set outer = loop %}
    {%- for step in funnel.steps %}
    select
        cast('{{ funnel.name }}' as {{ dbt.type_string() }}) as funnel,
        {{ loop.index }} as step_number,
        cast('{{ step }}' as {{ dbt.type_string() }}) as step,
        {{ funnel.steps | length }} as step_count,
        {{ funnel.window_days }} as window_days
    {%- if not (loop.last and outer.last) %}
    union all{% endif %}
    {%- endfor %}
    {%- endfor %}
{%- endmacro %}

{#-
    CTEs ending in `<prefix>_chosen`: the attempts of each of the `groups` (journeys or funnels
    as mappings: name, entry_events, goal_events (may be empty), timeout_days, entry_is_any,
    repeatable), chained over `touchpoints` (touchpoint_id, profile_id, touchpoint_type,
    occurred_at). The first attempt starts at the profile's first entry touchpoint (in time
    order, touchpoint id breaking ties); an attempt completes at the first goal strictly after
    its start (at or after it when entry_is_any) up to start + timeout_days, and ends there or
    at the timeout; the next attempt starts at the first later entry at or after that end,
    none after a completed attempt of a non-repeatable group. One pass gathers each profile's
    entries and goal times into sorted arrays (`<prefix>_entries`, one row per group and
    profile); each next attempt is a binary search in them (width_bucket), so the work grows
    with the attempts, not with the entries: an entry_event '*' journey has every touchpoint
    as an entry. Columns: the group, profile_id, attempt_number, start_touchpoint_id,
    started_at, timeout_at, completed_at, ended_at, is_final and attempt_id (hash of group,
    profile and starting touchpoint). Needs `with recursive`; PostgreSQL arrays.

    With a `scope` (profile_rebuild_scope()) and `stored` (a CTE of the stored attempts of the
    listed profiles: the group, profile_id, attempt_number, started_at, start_touchpoint_id,
    ended_at, tail_at (the model's profile_tail_column), is_final), only the attempts from
    each listed profile's rebuild_from on are chained (`<prefix>_resume`): those whose
    tail_at is before it are kept, and the chain goes on after the last of them, reading the
    touchpoints from where the first attempt it replaces started (or rebuild_from) only.
-#}
{% macro chained_attempts(touchpoints, group_column, groups, prefix, scope=none, stored=none) -%}
{%- set any_entry = groups | selectattr('entry_is_any') | list | length > 0 %}
{%- set types = groups | map(attribute='entry_events') | sum(start=[])
    + groups | map(attribute='goal_events') | sum(start=[]) %}
{%- set resumed = scope is not none %}
{%- if resumed %}
{{ _chain_resume(group_column, groups, prefix, scope, stored) }},
{%- endif %}
{{ prefix }}_entry_arrays as (

    select
        touchpoints.profile_id
        {%- for group in groups %}
        {%- set entry_filter = touchpoint_type_in('touchpoint_type', group.entry_events)
            ~ (_resumed_entry(loop.index) if resumed else '') %}
        {%- set goal_filter = touchpoint_type_in('touchpoint_type', group.goal_events)
            ~ (_resumed_goal(loop.index) if resumed else '') %},
        array_agg(occurred_at order by occurred_at, touchpoint_id)
            filter (where {{ entry_filter }})
            as entry_times_{{ loop.index }},
        array_agg(touchpoint_id order by occurred_at, touchpoint_id)
            filter (where {{ entry_filter }})
            as entry_ids_{{ loop.index }},
        {%- if group.goal_events %}
        array_agg(occurred_at order by occurred_at)
            filter (where {{ goal_filter }})
            as goal_times_{{ loop.index }},
        {%- endif %}
        {{ 'min(resume.kept_number_' ~ loop.index ~ ')' if resumed else 'cast(null as integer)' }}
            as kept_number_{{ loop.index }}
        {%- endfor %}
    from {{ touchpoints }} as touchpoints
    {%- if resumed %}
    inner join {{ prefix }}_resume as resume
        on resume.profile_id = touchpoints.profile_id
        and touchpoints.occurred_at >= resume.read_from
    {%- endif %}
    {%- if not any_entry %}
    where touchpoint_type in ('{{ types | unique | join("', '") }}')
    {%- endif %}
    group by touchpoints.profile_id

),

{{ prefix }}_entries as (
    {%- for group in groups %}

    select
        cast('{{ group.name }}' as {{ dbt.type_string() }}) as {{ group_column }},
        profile_id,
        entry_times_{{ loop.index }} as entry_times,
        entry_ids_{{ loop.index }} as entry_ids,
        {%- if group.goal_events %}
        goal_times_{{ loop.index }} as goal_times,
        {%- else %}
        cast(null as timestamp with time zone[]) as goal_times,  -- occurred_at's type
        {%- endif %}
        interval '{{ group.timeout_days }} days' as timeout,
        interval '{{ 1 if group.entry_is_any else 0 }} microsecond' as goal_offset,
        {{ 'true' if group.repeatable else 'false' }} as is_repeatable,
        coalesce(kept_number_{{ loop.index }}, 0) + 1 as first_attempt_number
    from {{ prefix }}_entry_arrays
    where entry_times_{{ loop.index }} is not null
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

{{ prefix }}_chain as (

    select
        {{ _entry_columns('entries', group_column) }},
        entries.first_attempt_number as attempt_number,
        attempt.*
    from {{ prefix }}_entries as entries
    cross join lateral ({{ _attempt_at('entries', '1') }}) as attempt

    union all

    select
        {{ _entry_columns('chain', group_column) }},
        chain.attempt_number + 1,
        attempt.*
    from {{ prefix }}_chain as chain
    cross join lateral ({{ _attempt_at('chain', _next_entry_position('chain')) }}) as attempt
    where not chain.is_final
        and attempt.entry_position <= cardinality(chain.entry_times)

),

{{ prefix }}_chosen as (

    select
        {{ group_column }},
        profile_id,
        cast(attempt_number as integer) as attempt_number,
        entry_ids[entry_position] as start_touchpoint_id,
        started_at,
        timeout_at,
        completed_at,
        ended_at,
        is_final,
        {{ dbt.hash(dbt.concat([group_column, "'|'", "profile_id", "'|'", "entry_ids[entry_position]"])) }}
            as attempt_id
    from {{ prefix }}_chain

)
{%- endmacro %}

{#-
    `<prefix>_resume`: one row per listed profile of `scope` with, per group i, where its
    chain goes on. The stored attempts whose tail_at is before the profile's rebuild_from
    cannot change (their touchpoints and timeouts are all before it); the last of them
    (kept_*_i) is where the chain goes on: at the first entry at or after its end and after
    its start, none when it is final (done_i). Entries before rebuild_from are unchanged, so
    the first entry the chain can use is where the first stored attempt it replaces started,
    or at rebuild_from when there was none (from_i); read_from is the earliest any group needs.
-#}
{% macro _chain_resume(group_column, groups, prefix, scope, stored) -%}
{{ prefix }}_listed as (

    select profile_id, rebuild_from
    from {{ scope }}
    where profile_id is not null

),

{{ prefix }}_kept_last as (

    select distinct on (stored.{{ group_column }}, stored.profile_id)
        stored.{{ group_column }},
        stored.profile_id,
        stored.attempt_number,
        stored.started_at,
        stored.start_touchpoint_id,
        stored.ended_at,
        stored.is_final
    from {{ stored }} as stored
    inner join {{ prefix }}_listed as listed
        on listed.profile_id = stored.profile_id
    where stored.tail_at < listed.rebuild_from
    order by stored.{{ group_column }}, stored.profile_id, stored.attempt_number desc

),

{{ prefix }}_replaced_first as (

    select stored.{{ group_column }}, stored.profile_id, min(stored.started_at) as started_at
    from {{ stored }} as stored
    inner join {{ prefix }}_listed as listed
        on listed.profile_id = stored.profile_id
    where stored.tail_at >= listed.rebuild_from
    group by stored.{{ group_column }}, stored.profile_id

),

{{ prefix }}_resume_by_group as (

    select
        listed.profile_id
        {%- for group in groups %},
        kept_{{ loop.index }}.attempt_number as kept_number_{{ loop.index }},
        kept_{{ loop.index }}.started_at as kept_started_at_{{ loop.index }},
        kept_{{ loop.index }}.start_touchpoint_id as kept_touchpoint_id_{{ loop.index }},
        kept_{{ loop.index }}.ended_at as kept_ended_at_{{ loop.index }},
        coalesce(kept_{{ loop.index }}.is_final, false) as done_{{ loop.index }},
        least(listed.rebuild_from, replaced_{{ loop.index }}.started_at) as from_{{ loop.index }}
        {%- endfor %}
    from {{ prefix }}_listed as listed
    {%- for group in groups %}
    left join {{ prefix }}_kept_last as kept_{{ loop.index }}
        on kept_{{ loop.index }}.profile_id = listed.profile_id
        and kept_{{ loop.index }}.{{ group_column }} = '{{ group.name }}'
    left join {{ prefix }}_replaced_first as replaced_{{ loop.index }}
        on replaced_{{ loop.index }}.profile_id = listed.profile_id
        and replaced_{{ loop.index }}.{{ group_column }} = '{{ group.name }}'
    {%- endfor %}

),

{{ prefix }}_resume as (

    select
        *,
        least(
            {%- for group in groups %}
            case when not done_{{ loop.index }} then from_{{ loop.index }} end
            {%- if not loop.last %},{% endif %}
            {%- endfor %}
        ) as read_from
    from {{ prefix }}_resume_by_group

)
{%- endmacro %}

{#- ` and` the conditions on a touchpoint to be an entry of group `i` when resumed. -#}
{% macro _resumed_entry(i) -%}
    {{ ' ' }}and not resume.done_{{ i }}
            and touchpoints.occurred_at >= resume.from_{{ i }}
            and (
                resume.kept_number_{{ i }} is null
                or (
                    touchpoints.occurred_at >= resume.kept_ended_at_{{ i }}
                    and (touchpoints.occurred_at, touchpoints.touchpoint_id)
                        > (resume.kept_started_at_{{ i }}, resume.kept_touchpoint_id_{{ i }})
                )
            )
{%- endmacro %}

{#- ` and` the conditions on a touchpoint to be a goal of group `i` when resumed. -#}
{% macro _resumed_goal(i) -%}
    {{ ' ' }}and not resume.done_{{ i }} and touchpoints.occurred_at >= resume.from_{{ i }}
{%- endmacro %}

{#- The columns of a `<prefix>_entries` row, qualified by `row`. -#}
{% macro _entry_columns(row, group_column) -%}
    {{ qualified_columns([group_column, 'profile_id', 'entry_times', 'entry_ids', 'goal_times', 'timeout', 'goal_offset', 'is_repeatable'], row) }}
{%- endmacro %}

{#- Where the attempt after `row`'s starts: the first entry at or after its end, and after its start. -#}
{% macro _next_entry_position(row) -%}
    greatest(
        width_bucket({{ row }}.ended_at - interval '1 microsecond', {{ row }}.entry_times) + 1,
        {{ row }}.entry_position + 1
    )
{%- endmacro %}

{#- The attempt of `row` (a `<prefix>_entries` or chain row) that starts at its entry `position`:
    entry_position, started_at, timeout_at, completed_at, ended_at, is_final. -#}
{% macro _attempt_at(row, position) -%}
    select
        entry_position,
        started_at,
        timeout_at,
        completed_at,
        coalesce(completed_at, timeout_at) as ended_at,
        (completed_at is not null and not {{ row }}.is_repeatable) as is_final
    from (
        select
            entry_position,
            started_at,
            timeout_at,
            case when next_goal_at <= timeout_at then next_goal_at end as completed_at
        from (
            select
                entry_position,
                {{ row }}.entry_times[entry_position] as started_at,
                {{ row }}.entry_times[entry_position] + {{ row }}.timeout as timeout_at,
                {{ row }}.goal_times[
                    width_bucket({{ row }}.entry_times[entry_position] - {{ row }}.goal_offset, {{ row }}.goal_times) + 1
                ] as next_goal_at
            from (select {{ position }} as entry_position) as position
        ) as timed
    ) as goal_checked
{%- endmacro %}

{#- A CTE body: per profile of `touchpoints`, the sorted times of each touchpoint type in
    the `step_lists` (lists of steps): `<type>_times`, null when the profile has none. -#}
{% macro step_time_arrays(touchpoints, step_lists) -%}
    {%- set types = step_lists | sum(start=[]) | unique | list %}
    select
        profile_id
        {%- for type in types %},
        array_agg(occurred_at order by occurred_at) filter (where touchpoint_type = '{{ type }}')
            as {{ type }}_times
        {%- endfor %}
    from {{ touchpoints }}
    where touchpoint_type in ('{{ types | join("', '") }}')
    group by profile_id
{%- endmacro %}

{#-
    `cross join lateral` subqueries step_1 ... step_<n> (reached_at): when each of the ordered
    `steps` was first reached in a row of `attempts` (window_from, window_until), found by
    binary search in its profile's row of `arrays` (step_time_arrays). Step 1 is the first
    matching touchpoint at or after window_from; every later step must come strictly after
    the step before it; all at or before window_until. The earliest match per step is the
    best one; reached_at is null from the first step not reached on.
-#}
{% macro ordered_step_laterals(attempts, arrays, steps) -%}
    {%- for step in steps %}
    cross join lateral (
        select case when candidate_at <= {{ attempts }}.window_until then candidate_at end as reached_at
        from (
            select {{ arrays }}.{{ step }}_times[
                width_bucket(
                    {%- if loop.first %}
                    {{ attempts }}.window_from - interval '1 microsecond',
                    {%- else %}
                    step_{{ loop.index - 1 }}.reached_at,
                    {%- endif %}
                    {{ arrays }}.{{ step }}_times
                ) + 1
            ] as candidate_at
        ) as candidate
    ) as step_{{ loop.index }}
    {%- endfor %}
{%- endmacro %}

{#- A select body: per row of `attempts` (attempt_id, group_column, profile_id, window_from,
    window_until) that reached the first of its group's steps, steps_reached and
    furthest_step_reached_at. `groups`: the journeys or funnels (name, steps) with steps;
    `step_times`: a CTE of step_time_arrays over their steps. -#}
{% macro ordered_steps_reached(attempts, group_column, groups, step_times='step_times') -%}
    {%- for group in groups %}
    select
        {{ attempts }}.attempt_id,
        {{ steps_reached_count(group.steps) }} as steps_reached,
        {{ furthest_step_reached_at(group.steps) }} as furthest_step_reached_at
    from {{ attempts }}
    inner join {{ step_times }}
        on {{ step_times }}.profile_id = {{ attempts }}.profile_id
    {{- ordered_step_laterals(attempts, step_times, group.steps) }}
    where {{ attempts }}.{{ group_column }} = '{{ group.name }}'
        and step_1.reached_at is not null
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- How many of the `steps` of ordered_step_laterals were reached. -#}
{% macro steps_reached_count(steps) -%}
    {%- for step in steps -%}
        case when step_{{ loop.index }}.reached_at is not null then 1 else 0 end
        {%- if not loop.last %} + {% endif %}
    {%- endfor -%}
{%- endmacro %}

{#- When the furthest step of ordered_step_laterals was reached. -#}
{% macro furthest_step_reached_at(steps) -%}
    coalesce(
        {%- for step in steps | reverse -%}
            step_{{ steps | length - loop.index0 }}.reached_at{% if not loop.last %}, {% endif %}
        {%- endfor -%}
    )
{%- endmacro %}

{#- fct_touchpoints up to the as-of time (later ones are not seen yet), as a CTE body; of
    the listed profiles only when `scope` (profile_rebuild_scope()) is given. -#}
{% macro touchpoints_until_as_of(columns, scope=none) -%}
    select {{ columns | join(', ') }}
    from {{ ref('fct_touchpoints') }}
    where occurred_at <= {{ as_of_timestamp() }}
    {{- profile_rebuild_filter(scope) }}
{%- endmacro %}

{#- touchpoints_until_as_of of the profiles of `attempts` (a CTE: profile_id, started_at) as a
    CTE body: on an incremental run (`scope`), from each profile's first attempt on (only the
    attempts from its rebuild_from on are recomputed); every visible one otherwise. -#}
{% macro touchpoints_of_attempts(columns, attempts, scope) -%}
    select visible.*
    from (
        {{ touchpoints_until_as_of(columns, scope) }}
    ) as visible
    {%- if scope is not none %}
    inner join (
        select profile_id, min(started_at) as started_at
        from {{ attempts }}
        group by profile_id
    ) as attempts_from
        on attempts_from.profile_id = visible.profile_id
        and attempts_from.started_at <= visible.occurred_at
    {%- endif %}
{%- endmacro %}

{#-
    Pre-hook of the episode and funnel models: their joins run over CTEs whose row estimates
    PostgreSQL guesses badly, and a nested loop over two big CTEs is quadratic; hash joins
    are what these set-based joins need.
-#}
{% macro episode_session_settings() -%}
    {{ return(adapter.dispatch('episode_session_settings', 'journeyflow')()) }}
{%- endmacro %}

{% macro default__episode_session_settings() %}{% endmacro %}

{% macro postgres__episode_session_settings() -%}
    set local enable_nestloop = off
{%- endmacro %}

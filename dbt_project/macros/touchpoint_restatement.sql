{#-
    Incremental touchpoints: which source records an incremental run of
    int_touchpoints_unioned rewrites.

      loaded_through     max(loaded_at) of the table: records loaded after it are new or
                         re-delivered, however long ago they occurred (late-arriving)
      window_start       touchpoint_window_start(): every day from there on is restated
                         whole for the window_sources, so records that vanished from a
                         re-delivered file disappear from the model as well
      window_sources     the sources whose records went away since the previous run
                         (source_increment_check: a source holds fewer records than that
                         run counted plus those loaded since; e.g. a re-delivered file
                         replaced its batch, a person was erased). A source that only gained
                         records has nothing in the window but its new records to restate.
      restated_through   max(restated_at) of the table: identifiers whose profile id changed
                         after it (int_identifiers_resolved.profile_changed_at: profiles
                         merged or split) re-stitch their touchpoints

    none (rewrite everything) on a full build or while the table is empty. The record counts
    live in the model's state table (macros/source_increment.sql); a source whose records
    went away loses its stored count, so the post-hook counts it whole, and the strategy
    (touchpoint_replace) finds the window's sources as those without one
    (source_increment_uncounted).
    counted_with: int_identity_edges, whose counts of this invocation are used.
-#}
{% macro touchpoint_restatement_plan(counted_with) -%}
    {%- set window_start = touchpoint_window_start() -%}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set row = run_query(
        'select cast(max(loaded_at) as ' ~ dbt.type_string() ~ '),'
        ~ ' cast(max(restated_at) as ' ~ dbt.type_string() ~ ')'
        ~ ' from ' ~ this
    ).rows[0] -%}
    {%- if row[0] is none or row[1] is none -%}
        {%- do source_increment_forget() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set went_away = source_increment_check(touchpoint_sources(), counted_with).went_away -%}
    {%- do source_increment_forget(went_away) -%}
    {%- set plan = {
        'loaded_through': row[0],
        'window_start': window_start,
        'window_sources': went_away,
        'restated_through': row[1],
    } -%}
    {{ log(
        this.identifier ~ ': restating records loaded after ' ~ plan.loaded_through
        ~ ', every touchpoint from ' ~ plan.window_start ~ ' of '
        ~ (plan.window_sources | join(', ') if plan.window_sources else 'no source (no records went away)')
        ~ ' and the touchpoints of identifiers whose profile changed after ' ~ plan.restated_through,
        info=True
    ) }}
    {{ return(plan) }}
{%- endmacro %}


{#- Start (UTC midnight, as text) of the restatement window: var('restatement_lookback_days')
    whole days before the UTC day of the as-of time (the run's data interval end). -#}
{% macro touchpoint_window_start() -%}
    {%- set lookback = var('restatement_lookback_days') -%}
    {%- if lookback is not number or lookback < 0 or lookback != lookback | int -%}
        {{ exceptions.raise_compiler_error(
            "var('restatement_lookback_days') must be a whole number of days >= 0, got " ~ lookback
        ) }}
    {%- endif -%}
    {%- set as_of = pipeline_value('as_of') -%}
    {%- if as_of -%}
        {%- set as_of_day = modules.datetime.datetime.fromisoformat(as_of | string)
            .astimezone(modules.pytz.utc).date() -%}
    {%- else -%}
        {%- set as_of_day = run_started_at.astimezone(modules.pytz.utc).date() -%}
    {%- endif -%}
    {%- set start = as_of_day - modules.datetime.timedelta(days=lookback | int) -%}
    {{ return(start.isoformat() ~ ' 00:00:00+00') }}
{%- endmacro %}


{#-
    The records of a staging `relation` (the `source` of int_touchpoints_unioned, keyed by
    `key_column`) the run writes: every one without a plan; else those loaded after the
    previous run, and the stored ones (found by the model's indexes, then by key in the
    staging relation) that occurred inside the window (a source of the plan's
    window_sources) or whose identifier (the one that decided their profile) is listed in
    the model's changed_identifiers. A record's other identifiers do not decide its row:
    one with a changed identifier that did not decide its profile would be rewritten as it
    was.
    Parts a single predicate would join with `or` are separate scans: the stored records'
    keys are looked up with `= any(array(...))` (an index scan of the staging relation's
    key, whatever the planner guesses for the view), the new ones by load time.
-#}
{% macro touchpoint_records(relation, plan, source, key_column) -%}
    select records.*
    from {{ relation }} as records
    {%- if plan is not none %}
    {%- set loaded_through = utc_timestamp_literal(plan.loaded_through) %}
    where records.loaded_at > {{ loaded_through }}

    union all

    select records.*
    from {{ relation }} as records
    where records.{{ key_column }} = any(array(
        {%- if source in plan.window_sources %}
        select stored.source_record_id
        from {{ this }} as stored
        where stored.source = '{{ source }}'
            and stored.occurred_at >= {{ utc_timestamp_literal(plan.window_start) }}

        union

        {%- endif %}
        select stored.source_record_id
        from {{ this }} as stored
        inner join changed_identifiers
            on changed_identifiers.identifier_type = stored.identifier_type
            and changed_identifiers.identifier_value = {{ touchpoint_identifier_key('stored') }}
        where stored.source = '{{ source }}'
    ))
        and (records.loaded_at <= {{ loaded_through }} or records.loaded_at is null)
    {%- endif %}
{%- endmacro %}


{#- The identifier key a stored touchpoint row was matched on: identifier_value, e-mails
    in their identity form (identity_email; the same column, and so an index scan, while
    var('identity_email_rules') rewrite nothing). -#}
{% macro touchpoint_identifier_key(alias) -%}
    {%- set value = alias ~ '.identifier_value' -%}
    {%- set email_key = identity_email(value) | trim -%}
    {%- if email_key == value -%}
        {{ value }}
    {%- else -%}
        case when {{ alias }}.identifier_type = 'email' then {{ email_key }} else {{ value }} end
    {%- endif -%}
{%- endmacro %}


{#- Identifiers whose profile id changed since the plan's restated_through (none when there
    is no plan: nothing needs matching then). profile_changed_at, not resolved_at: identity
    resolution rewrites every identifier of a profile that gained a record, most keep their
    profile, and their history would be rewritten for nothing. -#}
{% macro touchpoint_changed_identifiers(plan, identifiers) -%}
    select identifier_type, identifier_value
    from {{ identifiers }}
    {%- if plan is none %}
    where 1 = 0
    {%- else %}
    where profile_changed_at > {{ utc_timestamp_literal(plan.restated_through) }}
    {%- endif %}
{%- endmacro %}


{#- A timestamp with time zone literal from its text form (e.g. '2026-11-01 00:00:00+00'). -#}
{% macro utc_timestamp_literal(text) -%}
    {{ return(adapter.dispatch('utc_timestamp_literal', 'journeyflow')(text)) }}
{%- endmacro %}

{% macro default__utc_timestamp_literal(text) -%}
    cast('{{ text }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro postgres__utc_timestamp_literal(text) -%}
    cast('{{ text }}' as timestamptz)
{%- endmacro %}

{#-
    Incremental models whose rows are aggregates over source records (identity edges, e-mail
    spellings): while records are only added, an incremental run aggregates the records
    loaded since the previous run and merges them into the stored rows. A state table beside
    the model (<model>_state) keeps, per source, how many records the previous run saw and
    the latest load time among them; when a source now holds a different number than that
    plus the records loaded since (a re-delivered file replaced its rows, a person was
    erased), records went away and the run recomputes every row from all records instead.
-#}

{% macro source_increment_state_relation(model) -%}
    {{ return(api.Relation.create(
        database=model.database,
        schema=model.schema,
        identifier=model.identifier ~ '_state',
        type='table',
    )) }}
{%- endmacro %}

{#- Pre-hook: the state table (records seen per source by the previous run), emptied before a
    full build so that the post-hook counts every record. -#}
{% macro source_increment_state_create_sql(model) -%}
    {%- set state = source_increment_state_relation(model) -%}
    create table if not exists {{ state }} (
        source {{ dbt.type_string() }} primary key,
        records bigint not null,
        loaded_through timestamp with time zone,
        built_at timestamp with time zone not null
    );
    alter table {{ state }}
        add column if not exists invocation_id {{ dbt.type_string() }}
    {%- if not is_incremental() %};
    delete from {{ state }}
    {%- endif %}
{%- endmacro %}

{#- Post-hook: what this run saw, for the next one; sources: [(name, staging relation)].
    Only the records loaded after a source's stored load time are counted (found by the raw
    tables' load time index) and added to its stored count; a source without a stored row
    (a full build, or a run that recomputed: the plan emptied the state) is counted whole. -#}
{% macro source_increment_state_record_sql(model, sources) -%}
    {%- set state = source_increment_state_relation(model) -%}
    with

    stored as (
        select source, records, loaded_through from {{ state }}
    ),

    loaded_since as (
        {%- for name, relation in sources %}
        select '{{ name }}' as source, count(*) as records, max(loaded_at) as loaded_through
        from {{ relation }}
        where loaded_at > coalesce(
            (select stored.loaded_through from stored where stored.source = '{{ name }}'),
            cast('-infinity' as timestamp with time zone)
        )
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    )

    insert into {{ state }} (source, records, loaded_through, built_at, invocation_id)
    select
        loaded_since.source,
        coalesce(stored.records, 0) + loaded_since.records,
        greatest(stored.loaded_through, loaded_since.loaded_through),
        {{ build_timestamp() }},
        '{{ invocation_id }}'
    from loaded_since
    left join stored
        on stored.source = loaded_since.source
    on conflict (source) do update set
        records = excluded.records,
        loaded_through = excluded.loaded_through,
        built_at = excluded.built_at,
        invocation_id = excluded.invocation_id
{%- endmacro %}


{#-
    The merge plan of an incremental run: {source: latest load time the previous run saw,
    as text (none = it saw no records)}, or none when every row is recomputed (a full
    build, no state yet, or records went away since). rows: what the model's rows are, for
    the log ('edge', 'spelling'). Deciding to recompute on an incremental run empties the
    state, in the model's transaction, so that its post-hook counts every record.
    counted_with: see source_increment_check.
-#}
{% macro source_increment_plan(sources, rows, counted_with=none) -%}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set check = source_increment_check(sources, counted_with) -%}
    {%- if check.went_away -%}
        {{ log(this.identifier ~ ': recomputing every ' ~ rows, info=True) }}
        {%- do source_increment_forget() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ log(this.identifier ~ ': merging the records loaded since the previous run into the stored ' ~ rows ~ 's', info=True) }}
    {{ return(check.loaded_through) }}
{%- endmacro %}

{#-
    Which sources' records went away since the previous run counted them: {went_away: the
    names of the sources (name, staging relation) that now hold a different number of
    records than that count plus the records loaded since (or that have no stored count),
    loaded_through: {source: latest load time the previous run saw, as text, or none}}.
    counted_with: a model of the same kind that runs before this one (a dependency); the
    sources' record counts its state holds from this dbt invocation are used instead of
    counting every record again, and only the records loaded since are counted.
-#}
{% macro source_increment_check(sources, counted_with=none) -%}
    {%- set state = source_increment_state_relation(this) -%}
    {%- set stored = {} -%}
    {%- if adapter.get_relation(state.database, state.schema, state.identifier) is not none -%}
        {%- for row in run_query(
            'select source, records, cast(loaded_through as ' ~ dbt.type_string() ~ ') from ' ~ state
        ).rows -%}
            {%- do stored.update({row[0]: row}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set went_away = [] -%}
    {%- set loaded_through = {} -%}
    {%- for name, relation in sources if name not in stored -%}
        {{ log(this.identifier ~ ': no record count stored for ' ~ name, info=True) }}
        {%- do went_away.append(name) -%}
    {%- endfor -%}
    {%- set counted = source_increment_counted_in_this_invocation(counted_with) -%}
    {%- set counts -%}
        {%- for name, relation in sources if name in stored %}
        {%- set loaded_after = source_increment_loaded_after(stored[name][2]) %}
        {%- if name in counted %}
        select '{{ name }}', cast({{ counted[name] }} as bigint), count(*)
        from {{ relation }}
        where loaded_at > {{ loaded_after }}
        {%- else %}
        select '{{ name }}', count(*), count(*) filter (where loaded_at > {{ loaded_after }})
        from {{ relation }}
        {%- endif %}
        {%- if not loop.last %} union all{% endif %}
        {%- endfor %}
    {%- endset -%}
    {%- for name, records, new_records in (run_query(counts).rows if counts | trim else []) -%}
        {%- if records != stored[name][1] + new_records -%}
            {{ log(
                this.identifier ~ ': ' ~ name ~ ' holds ' ~ records ~ ' records, the previous run saw '
                ~ stored[name][1] ~ ' and ' ~ new_records ~ ' were loaded since: records went away',
                info=True
            ) }}
            {%- do went_away.append(name) -%}
        {%- endif -%}
        {%- do loaded_through.update({name: stored[name][2]}) -%}
    {%- endfor -%}
    {{ return({'went_away': went_away, 'loaded_through': loaded_through}) }}
{%- endmacro %}

{#- {source: records} as counted by the state of `model` in this dbt invocation ({} when it
    has not run in it, or is none). invocation_id is read through to_jsonb: a state table
    written before that column existed gets it from its own model's pre-hook, which may not
    have run yet. -#}
{% macro source_increment_counted_in_this_invocation(model) -%}
    {%- set counted = {} -%}
    {%- if model is not none -%}
        {%- set state = source_increment_state_relation(model) -%}
        {%- if adapter.get_relation(state.database, state.schema, state.identifier) is not none -%}
            {%- for name, records in run_query(
                'select source, records from ' ~ state ~ ' as counts'
                ~ " where to_jsonb(counts) ->> 'invocation_id' = '" ~ invocation_id ~ "'"
            ).rows -%}
                {%- do counted.update({name: records}) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(counted) }}
{%- endmacro %}

{#- Drop the stored record counts of these sources (names; every source when none), in the
    model's transaction: its post-hook then counts them whole. -#}
{% macro source_increment_forget(sources=none) -%}
    {%- set state = source_increment_state_relation(this) -%}
    {%- if (sources is none or sources)
        and adapter.get_relation(state.database, state.schema, state.identifier) is not none -%}
        {%- do run_query(
            'delete from ' ~ state
            ~ (" where source in ('" ~ sources | join("', '") ~ "')" if sources is not none else '')
        ) -%}
    {%- endif -%}
{%- endmacro %}

{#- The names of the sources (name, staging relation) that have no stored record count in the
    state of `model` (none taken yet, or dropped by source_increment_forget in this run). -#}
{% macro source_increment_uncounted(model, sources) -%}
    {%- set counted = run_query(
        'select source from ' ~ source_increment_state_relation(model)
    ).columns[0].values() -%}
    {{ return(sources | map(attribute=0) | reject('in', counted) | list) }}
{%- endmacro %}

{#- The load time after which a source's records are new (everything when none was seen). -#}
{% macro source_increment_loaded_after(loaded_through) -%}
    {%- if loaded_through is none -%}
        cast('-infinity' as timestamp with time zone)
    {%- else -%}
        {{ utc_timestamp_literal(loaded_through) }}
    {%- endif -%}
{%- endmacro %}

{#- `where` keeping a source's new records on a merge run; nothing otherwise. -#}
{% macro source_increment_new_records(plan, source, alias) -%}
    {%- if plan is not none %}
    where {{ alias }}.loaded_at > {{ source_increment_loaded_after(plan[source]) }}
    {%- endif %}
{%- endmacro %}

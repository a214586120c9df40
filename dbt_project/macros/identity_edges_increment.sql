{#-
    Incremental identity edges: an edge's columns are aggregates over the records that carry
    it (first/last seen, count, sources, first record), so while records are only added an
    incremental run aggregates the records loaded since the previous run and merges them
    into the stored edges. int_identity_edges_state keeps, per source, how many records the
    previous run saw and the latest load time among them; when a source now holds a
    different number than that plus the records loaded since (a re-delivered file replaced
    its rows, a person was erased), records went away and the run recomputes every edge
    from all records instead (writing only the edges that changed, tombstones included).
-#}

{#- (source name, staging relation) of every source whose records carry identifiers -#}
{% macro identity_edge_sources() -%}
    {{ return([
        ('web', ref('stg_web__events')),
        ('crm', ref('stg_crm__contacts')),
        ('shop', ref('stg_shop__orders')),
        ('support', ref('stg_support__tickets')),
        ('sendgrid', ref('stg_sendgrid__events')),
    ]) }}
{%- endmacro %}


{% macro identity_edges_state_relation(edges) -%}
    {{ return(api.Relation.create(
        database=edges.database,
        schema=edges.schema,
        identifier='int_identity_edges_state',
        type='table',
    )) }}
{%- endmacro %}

{#- Pre-hook: the state table (records seen per source by the previous run). -#}
{% macro identity_edges_state_create_sql(edges) -%}
    create table if not exists {{ identity_edges_state_relation(edges) }} (
        source {{ dbt.type_string() }} primary key,
        records bigint not null,
        loaded_through timestamp with time zone,
        built_at timestamp with time zone not null
    )
{%- endmacro %}

{#- Post-hook: what this run saw, for the next one. -#}
{% macro identity_edges_state_record_sql(edges) -%}
    {%- set state = identity_edges_state_relation(edges) -%}
    delete from {{ state }};
    insert into {{ state }} (source, records, loaded_through, built_at)
    {%- for name, relation in identity_edge_sources() %}
    select '{{ name }}', count(*), max(loaded_at), {{ build_timestamp() }} from {{ relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}


{#-
    The merge plan of an incremental run: {source: latest load time the previous run saw,
    as text (none = it saw no records)}, or none when every edge is recomputed (a full
    build, no state yet, or records went away since).
-#}
{% macro identity_edges_plan() -%}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set state = identity_edges_state_relation(this) -%}
    {%- set stored = {} -%}
    {%- for row in run_query(
        'select source, records, cast(loaded_through as ' ~ dbt.type_string() ~ ') from ' ~ state
    ).rows -%}
        {%- do stored.update({row[0]: row}) -%}
    {%- endfor -%}
    {%- set sources = identity_edge_sources() -%}
    {%- for name, relation in sources if name not in stored -%}
        {{ log(this.identifier ~ ': no record count stored for ' ~ name ~ ': recomputing every edge', info=True) }}
        {{ return(none) }}
    {%- endfor -%}
    {%- set counts -%}
        {%- for name, relation in sources %}
        select '{{ name }}', count(*),
            count(*) filter (where loaded_at > {{ identity_edges_loaded_after(stored[name][2]) }})
        from {{ relation }}
        {%- if not loop.last %} union all{% endif %}
        {%- endfor %}
    {%- endset -%}
    {%- set plan = {} -%}
    {%- for name, records, new_records in run_query(counts).rows -%}
        {%- if records != stored[name][1] + new_records -%}
            {{ log(
                this.identifier ~ ': ' ~ name ~ ' holds ' ~ records ~ ' records, the previous run saw '
                ~ stored[name][1] ~ ' and ' ~ new_records ~ ' were loaded since: records went away,'
                ~ ' recomputing every edge', info=True
            ) }}
            {{ return(none) }}
        {%- endif -%}
        {%- do plan.update({name: stored[name][2]}) -%}
    {%- endfor -%}
    {{ log(this.identifier ~ ': merging the records loaded since the previous run into the stored edges', info=True) }}
    {{ return(plan) }}
{%- endmacro %}

{#- The load time after which a source's records are new (everything when none was seen). -#}
{% macro identity_edges_loaded_after(loaded_through) -%}
    {%- if loaded_through is none -%}
        cast('-infinity' as timestamp with time zone)
    {%- else -%}
        {{ utc_timestamp_literal(loaded_through) }}
    {%- endif -%}
{%- endmacro %}

{#- `where` keeping a source's new records on a merge run; nothing otherwise. -#}
{% macro identity_edges_new_records(plan, source, alias) -%}
    {%- if plan is not none %}
    where {{ alias }}.loaded_at > {{ identity_edges_loaded_after(plan[source]) }}
    {%- endif %}
{%- endmacro %}


{#-
    The merge: each edge the new records carry, its aggregates combined with the stored
    active edge's (a tombstone's records are gone: it restarts from the new ones).
    first_record_id: the record of the smaller (time key, record id), as a full build picks.
-#}
{% macro identity_edges_merged(new_edges, stored_edges, sources) -%}
    {%- set kept = 'coalesce(' ~ stored_edges ~ '.is_active, false)' -%}
    {%- set all_sources -%}
        ',' || case when {{ kept }} then {{ stored_edges }}.sources else '' end || ',' || {{ new_edges }}.sources || ','
    {%- endset -%}
    {%- set source_flags = [] -%}
    {%- for source in sources -%}
        {%- do source_flags.append("case when strpos(" ~ all_sources ~ ", '," ~ source ~ ",') > 0 then '" ~ source ~ ",' else '' end") -%}
    {%- endfor %}
    select
        {{ new_edges }}.edge_id,
        {{ new_edges }}.left_identifier_type,
        {{ new_edges }}.left_identifier_value,
        {{ new_edges }}.right_identifier_type,
        {{ new_edges }}.right_identifier_value,
        {{ new_edges }}.is_self_edge,
        rtrim({{ dbt.concat(source_flags) }}, ',') as sources,
        case when {{ kept }}
            then least({{ new_edges }}.first_seen_at, {{ stored_edges }}.first_seen_at)
            else {{ new_edges }}.first_seen_at
        end as first_seen_at,
        case when {{ kept }}
            then greatest({{ new_edges }}.last_seen_at, {{ stored_edges }}.last_seen_at)
            else {{ new_edges }}.last_seen_at
        end as last_seen_at,
        {{ new_edges }}.times_seen
            + case when {{ kept }} then {{ stored_edges }}.times_seen else 0 end as times_seen,
        case
            when {{ kept }} and {{ dbt.concat([identity_time_key(stored_edges ~ '.first_seen_at'), stored_edges ~ '.first_record_id']) }}
                < {{ new_edges }}.first_record_order
                then {{ stored_edges }}.first_record_id
            else {{ identity_after_time_key(new_edges ~ '.first_record_order') }}
        end as first_record_id,
        true as is_active
    from {{ new_edges }}
    left join {{ this }} as {{ stored_edges }}
        on {{ stored_edges }}.edge_id = {{ new_edges }}.edge_id
{%- endmacro %}

{#-
    Incremental identity edges: an edge's columns are aggregates over the records that carry
    it (first/last seen, count, sources, first record), so while records are only added an
    incremental run aggregates the records loaded since the previous run and merges them
    into the stored edges (macros/source_increment.sql); when records went away the run
    recomputes every edge from all records instead (writing only the edges that changed,
    tombstones included).
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

{#- the sources whose records carry the e-mail addresses people typed: all but e-mail events,
    which hold the addresses the pipeline sent to (int_email_spellings) -#}
{% macro email_spelling_sources() -%}
    {{ return(identity_edge_sources_except('sendgrid')) }}
{%- endmacro %}

{#- the sources whose records are touchpoints (int_touchpoints_unioned): all but CRM contacts -#}
{% macro touchpoint_sources() -%}
    {{ return(identity_edge_sources_except('crm')) }}
{%- endmacro %}

{% macro identity_edge_sources_except(excluded) -%}
    {%- set sources = [] -%}
    {%- for name, relation in identity_edge_sources() if name != excluded -%}
        {%- do sources.append((name, relation)) -%}
    {%- endfor -%}
    {{ return(sources) }}
{%- endmacro %}


{#-
    The merge: each edge the new records carry, its aggregates combined with the stored
    active edge's (a tombstone's records are gone: it restarts from the new ones).
    first_record_id: the record of the smaller (time key, record id), as a full build picks.
    structure_kept_at: `stored_structure_at` (the stored edge's structure change time) when
    the edge was active and is not seen earlier than before; null (changed now) otherwise.
-#}
{% macro identity_edges_merged(new_edges, stored_edges, sources, stored_structure_at) -%}
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
        true as is_active,
        case
            when {{ kept }} and {{ new_edges }}.first_seen_at >= {{ stored_edges }}.first_seen_at
                then {{ stored_structure_at }}
        end as structure_kept_at
    from {{ new_edges }}
    left join {{ this }} as {{ stored_edges }}
        on {{ stored_edges }}.edge_id = {{ new_edges }}.edge_id
{%- endmacro %}

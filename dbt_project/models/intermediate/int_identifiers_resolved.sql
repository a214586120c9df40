{#-
    Identity resolution: one row per identifier with the profile it belongs to. The
    `identity_resolution` materialization (macros/identity_resolution/) does the work on
    the edges selected here: connected components looped to convergence, limit rules,
    maximum cluster size, survivor and profile id, change history; incremental runs only
    rewrite the profiles touched by edges that changed since the previous run.
-#}

{#- no index by default: incremental runs find their rows with hash joins; add
    indexes=[{'columns': ['identifier_key'], 'unique': True}] for very large graphs -#}
{{ config(materialized='identity_resolution') }}

select
    edge_id,
    left_identifier_type,
    left_identifier_value,
    right_identifier_type,
    right_identifier_value,
    is_self_edge,
    first_seen_at,
    last_seen_at,
    times_seen,
    first_record_id,
    is_active,
    changed_at,
    structure_changed_at
from {{ ref('int_identity_edges') }}

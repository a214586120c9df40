{#-
    Every change of a profile id, one row per (previous profile, surviving profile) and run:
    which profile id an identifier group had before, which one it follows now, the rule
    that changed it and, for a merge, the record that linked them. Append-only: it keeps
    its history across --full-refresh runs, so it must be built in the same dbt run as
    int_identifiers_resolved (it reads the changes that run recorded).
-#}

{{ config(
    materialized='incremental',
    unique_key='merge_id',
    incremental_strategy='delete+insert',
    full_refresh=false,
    on_schema_change='fail',
) }}

with

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}
    where profile_changed_at is not null
    {% if is_incremental() %}
        and profile_changed_at > coalesce(
            (select max(merged_at) from {{ this }}),
            cast('1900-01-01' as {{ dbt.type_timestamp() }})
        )
    {% endif %}

),

edges as (

    select * from {{ ref('int_identity_edges') }}

),

changes as (

    select
        previous_profile_id,
        profile_id as surviving_profile_id,
        change_rule as rule,
        linking_edge_id,
        linking_record_id,
        profile_changed_at as merged_at,
        count(*) as identifiers_moved
    from identifiers
    where previous_profile_id is not null
    group by
        previous_profile_id,
        profile_id,
        change_rule,
        linking_edge_id,
        linking_record_id,
        profile_changed_at

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            "changes.previous_profile_id", "'|'", "changes.surviving_profile_id", "'|'",
            "cast(changes.merged_at as " ~ dbt.type_string() ~ ")"
        ])) }} as merge_id,
        changes.merged_at,
        changes.previous_profile_id,
        changes.surviving_profile_id,
        changes.rule,
        changes.identifiers_moved,
        changes.linking_record_id,
        changes.linking_edge_id,
        {{ dbt.concat(["edges.left_identifier_type", "':'", "edges.left_identifier_value"]) }}
            as linking_left_identifier,
        {{ dbt.concat(["edges.right_identifier_type", "':'", "edges.right_identifier_value"]) }}
            as linking_right_identifier
    from changes
    left join edges
        on edges.edge_id = changes.linking_edge_id

)

select * from final

{{ config(severity='warn') }}

-- Profiles holding more identifiers than var('max_cluster_size') usually mean a shared junk
-- identifier (add it to var('identity_blocklist')).
select
    profile_id,
    max(cluster_size) as cluster_size
from {{ ref('int_identifiers_resolved') }}
group by profile_id
having max(cluster_size) > {{ var('max_cluster_size') }}

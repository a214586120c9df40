{#-
    Data health for dashboards: one row per quality-gate run and table, from the Great
    Expectations results the gates record (dq.validation_results). Built before this run's
    gate_reporting, so it holds this run's gate_raw and gate_marts results and earlier
    runs' gate_reporting results. Counts only: sample values are never copied here.
-#}

with

results as (

    select * from {{ ref('stg_dq__validation_results') }}

),

per_table as (

    select
        validated_run_id,
        gate,
        table_name,
        count(*) as checks,
        sum(case when success then 1 else 0 end) as checks_passed,
        sum(case when not success and severity = 'critical' then 1 else 0 end) as errors,
        sum(case when not success and severity <> 'critical' then 1 else 0 end) as warnings,
        sum(case when not success then coalesce(unexpected_count, 0) else 0 end)
            as unexpected_rows,
        max(validated_at) as validated_at
    from results
    group by validated_run_id, gate, table_name

),

final as (

    select
        validated_run_id,
        gate,
        table_name,
        cast(checks as bigint) as checks,
        cast(checks_passed as bigint) as checks_passed,
        cast(errors as bigint) as errors,
        cast(warnings as bigint) as warnings,
        cast(unexpected_rows as bigint) as unexpected_rows,
        case
            when errors > 0 then 'fail'
            when warnings > 0 then 'warn'
            else 'pass'
        end as status,
        validated_at,
        {{ build_timestamp() }} as refreshed_at,
        {{ build_run_id() }} as run_id
    from per_table

)

select * from final

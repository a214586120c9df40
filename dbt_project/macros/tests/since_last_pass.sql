{#-
    Data tests that check only the rows written since they last passed.

    A generic test configured with
        where: "__since_last_pass(loaded_at)__"
    checks the rows whose `loaded_at` is after the start of the last build in which this
    very test passed (every row before it has passed) or null, and
        where: "__since_last_pass(loaded_at, event_id)__"
    checks every row sharing an `event_id` with such a row; a `unique` test does the latter
    on its own column, so that it still catches a new row repeating an old key. Both
    columns should be indexed on big tables. The time column must be one the build or the
    loader sets on every write (restated_at, changed_at, resolved_at, loaded_at).

    Where the key leads a B-tree index (raw tables index their source key, and the staging
    views pass it on), `meta: {key_lookup: index}` in the test's config looks the new keys
    up in it (`= any(array(...))`). Left to itself, the planner costs tens of thousands of
    index probes above a scan of the whole table (88 k new web events among 8.9 M: 1.7 s
    instead of 0.2 s). Without such an index keep the default: a scan comparing every row
    with that array takes minutes.

    A model whose meta names its write time column (`data_tests_since_last_pass:
    rebuilt_at`: the profile marts, rewritten for the listed profiles only) gives that where
    to each of its generic tests that sets none; `unique` and `unique_combination_of_columns`
    (on its first column) check every row sharing a key with a written row.

    The watermark advances only when the test passes (dq.data_test_watermarks, written by
    record_passed_data_tests on-run-end): rows of a failed build are checked again by the
    next one, a full rebuild (new time stamps) checks every row, and an unknown test (no
    watermark) checks the whole table. Rows must not be written by a transaction that
    began before the build and commits after it started (the pipeline loads, then builds).
-#}

{% macro data_test_watermarks_ddl() -%}
    create schema if not exists dq;
    create table if not exists dq.data_test_watermarks (
        test_id text primary key,
        passed_build_at timestamptz not null
    )
{%- endmacro %}


{#- dbt's default, plus the __since_last_pass(...)__ placeholder (see above). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = data_test_where(model) -%}
    {%- if not where -%}{{ return(relation) }}{%- endif -%}
    {%- set pattern = '__since_last_pass\\(\\s*(\\w+)\\s*(?:,\\s*(\\w+)\\s*)?\\)__' -%}
    {%- set match = modules.re.search(pattern, where) -%}
    {%- if match -%}
        {%- set key_column = match.group(2) or uniqueness_key_column(model) -%}
        {%- set by_index = (config.get('meta') or {}).get('key_lookup') == 'index' -%}
        {%- set where = where.replace(
            match.group(0),
            since_last_pass_condition(relation, match.group(1), key_column, by_index),
        ) -%}
    {%- endif -%}
    {%- set filtered -%}
        (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}


{#- A test's where: its own, else `__since_last_pass(<column>)__` when it is a generic test
    of a model whose meta names its write time column (data_tests_since_last_pass); none
    otherwise. -#}
{% macro data_test_where(test_node) -%}
    {%- set own = test_node.config.get('where') -%}
    {%- if own -%}{{ return(own) }}{%- endif -%}
    {%- set tested = graph.nodes.get(test_node.attached_node or '') if execute else none -%}
    {%- set meta = (tested or {}).get('config', {}).get('meta') or {} -%}
    {%- set column = meta.get('data_tests_since_last_pass') -%}
    {{ return('__since_last_pass(' ~ column ~ ')__' if column else none) }}
{%- endmacro %}


{#- The column whose rows a uniqueness test compares new rows with: unique's own column, the
    first of unique_combination_of_columns; none for other tests. -#}
{% macro uniqueness_key_column(test_node) -%}
    {%- set metadata = test_node.test_metadata -%}
    {%- if not metadata -%}{{ return(none) }}{%- endif -%}
    {%- if metadata.name == 'unique' -%}{{ return(metadata.kwargs.column_name) }}{%- endif -%}
    {%- if metadata.name == 'unique_combination_of_columns' -%}
        {{ return(metadata.kwargs.combination_of_columns[0]) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{#- SQL condition: rows of `relation` written since the running test last passed, or rows
    sharing `key_column` with one of them (looked up in its index with by_index); every row
    (`true`, no self-join) when it never passed. -#}
{% macro since_last_pass_condition(relation, time_column, key_column=none, by_index=false) -%}
    {%- set watermark = last_pass_timestamp() -%}
    {%- set written -%}
        ({{ time_column }} > {{ watermark }} or {{ time_column }} is null)
    {%- endset -%}
    {%- set new_keys -%}
        select {{ key_column }} from {{ relation }} where {{ written }}
    {%- endset -%}
    {%- if watermark == never_passed_timestamp() -%}
        true
    {%- elif key_column and by_index -%}
        {{ key_column }} = any(array({{ new_keys }}))
    {%- elif key_column -%}
        {{ key_column }} in ({{ new_keys }})
    {%- else -%}
        {{ written }}
    {%- endif -%}
{%- endmacro %}


{#- The running test's watermark as a literal (so the planner sees how few rows are new
    and uses the time column's index); -infinity when it never passed. -#}
{% macro last_pass_timestamp() -%}
    {%- set never = never_passed_timestamp() -%}
    {%- if not execute -%}{{ return(never) }}{%- endif -%}
    {%- if run_query("select to_regclass('dq.data_test_watermarks') is null").rows[0][0] -%}
        {{ return(never) }}
    {%- endif -%}
    {%- set rows = run_query(
        "select to_char(passed_build_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        ~ " from dq.data_test_watermarks where test_id = '" ~ model.unique_id ~ "'"
    ).rows -%}
    {%- if rows | length == 0 -%}{{ return(never) }}{%- endif -%}
    {{ return(utc_timestamp_literal(rows[0][0] ~ '+00')) }}
{%- endmacro %}


{% macro never_passed_timestamp() -%}
    {{ return("cast('-infinity' as timestamptz)") }}
{%- endmacro %}


{#- on-run-end: the tests scoped by __since_last_pass(...)__ that passed in this build
    move their watermark to its start. -#}
{% macro record_passed_data_tests(results) -%}
    {%- set passed = [] -%}
    {%- for result in results -%}
        {%- if result.node.resource_type == 'test' and result.status == 'pass'
            and '__since_last_pass(' in (data_test_where(result.node) or '') -%}
            {%- do passed.append("'" ~ result.node.unique_id ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if passed -%}
        insert into dq.data_test_watermarks (test_id, passed_build_at)
        select test_id, {{ build_timestamp() }}
        from unnest(array[{{ passed | join(', ') }}]) as passed(test_id)
        on conflict (test_id) do update set passed_build_at = excluded.passed_build_at
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

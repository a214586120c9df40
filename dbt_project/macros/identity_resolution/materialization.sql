{#-
    Materialization `identity_resolution`: turns the identity graph (the model's SQL selects
    int_identity_edges) into one row per identifier with its profile, in one transaction:

      1. scope      full: every active identifier; incremental: the identifiers on edges
                    changed since the last resolution plus every identifier of the profiles
                    they belonged to, closed over cut links (scope.sql)
      2. graph      identifiers as 64-bit node ids, links as (a, b) pairs (graph.sql)
      3. components connected components, looped until no edge is left (components.sql):
                    never a fixed number of passes
      4. limits     components holding more identifiers of a limited type than
                    var('identity_limits') allows are rebuilt greedily, strongest link
                    first, cutting the weaker links (guardrails.sql)
      5. size       a component above var('max_cluster_size') stops the run with an error
                    naming it (guardrails.sql)
      6. survivor   the component's oldest identifier (first_seen_at, then identifier_key);
                    profile_id = 'p_' || left(md5(identifier_key), 16) (profiles.sql)
      7. changes    identifiers whose profile id changed keep the previous id, the rule and
                    the linking record (identity_merge_log reads them)
      8. write      full: a new table swapped in; incremental: the scope's rows replaced

    A failure anywhere rolls the transaction back and leaves the previous resolution intact.
-#}
{% materialization identity_resolution, default %}

    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- set session_settings = identity_session_settings() | trim -%}
    {% if session_settings %}{% do run_query(session_settings) %}{% endif %}

    {%- set timer = {'last': modules.datetime.datetime.now(), 'steps': []} -%}
    {%- set edges = '(' ~ sql ~ ') as identity_edges' -%}
    {#- the previous resolution, unless the table predates this materialization -#}
    {%- set previous_relation = existing_relation if identity__is_resolution_state(existing_relation) else none -%}
    {% do identity__add_missing_columns(previous_relation) %}
    {%- set scope = identity__scope(previous_relation, edges) -%}
    {% do identity__lap(timer, 'scope') %}

    {%- set graph = namespace(node_ids=identity__node_ids(scope)) -%}
    {%- for attempt in range(2) -%}
        {%- set graph.links = identity__links(scope, graph.node_ids) -%}
        {%- set labels = identity__connected_components(graph.links) -%}
        {%- set graph.assigned = identity__assign(scope, graph.node_ids, labels) -%}
        {%- if graph.assigned is not none -%}{%- break -%}{%- endif -%}
        {%- set graph.node_ids = default__identity__node_ids(scope) -%}
    {%- endfor -%}
    {%- set assigned = graph.assigned -%}
    {% do identity__lap(timer, 'graph and components') %}

    {%- set stats = identity__component_stats(assigned) -%}
    {% do identity__lap(timer, 'statistics') %}
    {%- set limited = identity__apply_limits(assigned, stats, graph.links) -%}
    {% do identity__lap(timer, 'limits') %}
    {%- set components = identity__components(assigned, limited.rebuilt) -%}
    {% do identity__check_cluster_sizes(components, stats, scope.edges) %}
    {%- set survivors = identity__survivors(stats) -%}
    {%- set resolved = identity__resolved(components, survivors, materialize=previous_relation is not none) -%}
    {%- set changes = identity__changes(resolved, scope, previous_relation) -%}
    {%- set final_sql = identity__final_sql(resolved, changes, previous_relation) -%}
    {% do identity__lap(timer, 'size check and changes') %}

    {%- if scope.mode == 'full' -%}
        {% call statement('main') -%}
            {{ get_create_table_as_sql(False, intermediate_relation, final_sql) }}
        {%- endcall %}
        {% do create_indexes(intermediate_relation) %}
        {% if existing_relation is not none %}
            {{ adapter.rename_relation(existing_relation, backup_relation) }}
        {% endif %}
        {{ adapter.rename_relation(intermediate_relation, target_relation) }}
    {%- else -%}
        {#- rows first: they carry history over from the rows about to be replaced -#}
        {%- set final_rows = identity__temp_table('final', final_sql) -%}
        {% call statement('delete_scope') -%}
            delete from {{ target_relation }}
            where identifier_key in (select identifier_key from {{ scope.identifiers }})
        {%- endcall %}
        {% call statement('main') -%}
            insert into {{ target_relation }} ({{ identity__resolved_columns() | join(', ') }})
            select {{ identity__resolved_columns() | join(', ') }}
            from {{ final_rows }}
        {%- endcall %}
    {%- endif -%}

    {%- set written = load_result('main')['response'].rows_affected -%}
    {%- set seen_again = identity__update_seen_times(target_relation, scope) -%}
    {% do identity__lap(timer, 'write') %}
    {{ log(
        'identity resolution (' ~ scope.mode ~ '): ' ~ written ~ ' identifiers rewritten in '
        ~ identity__scalar('select count(*) from ' ~ stats) ~ ' profiles, '
        ~ limited.split ~ ' components split by limit rules, '
        ~ identity__scalar('select count(*) from ' ~ changes) ~ ' profile id changes, '
        ~ seen_again ~ ' seen again (seen times updated)',
        info=True
    ) }}

    {% do identity__analyze(target_relation) %}
    {% do identity__drop_temp_tables() %}
    {% do identity__lap(timer, 'analyze and clean-up') %}
    {{ log('identity resolution steps: ' ~ timer.steps | join(', '), info=True) }}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do apply_grants(target_relation, config.get('grants'), should_revoke=should_revoke(existing_relation, full_refresh_mode=True)) %}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ drop_relation_if_exists(backup_relation) }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}


{#- Incremental runs: the identifiers whose self-edge was only seen again get its
    last_seen_at and this run's resolved_at (rows rewritten by this run already have
    both); returns how many rows changed. -#}
{% macro identity__update_seen_times(target_relation, scope) -%}
    {%- if scope.mode != 'incremental' -%}{{ return(0) }}{%- endif -%}
    {%- set run_at = build_timestamp() -%}
    {{ return(identity__execute('identity_seen_again', '
        update ' ~ target_relation ~ ' as resolved
        set last_seen_at = seen_again.last_seen_at, resolved_at = ' ~ run_at ~ '
        from (' ~ scope.seen_again ~ ') as seen_again
        where resolved.identifier_key = seen_again.identifier_key
            and resolved.resolved_at <> ' ~ run_at
    )) }}
{%- endmacro %}


{#- Record the seconds spent since the previous lap as `step` in `timer` (logged at the end). -#}
{% macro identity__lap(timer, step) -%}
    {%- set now = modules.datetime.datetime.now() -%}
    {%- do timer.steps.append(step ~ ' ' ~ '%.2f' | format((now - timer.last).total_seconds()) ~ ' s') -%}
    {%- do timer.update({'last': now}) -%}
{%- endmacro %}


{#- Columns of the resolved table, in order. -#}
{% macro identity__resolved_columns() -%}
    {{ return([
        'identifier_key', 'identifier_type', 'identifier_value', 'profile_id',
        'survivor_identifier_type', 'survivor_identifier_value', 'cluster_size',
        'first_seen_at', 'last_seen_at', 'previous_profile_id', 'profile_changed_at',
        'change_rule', 'linking_edge_id', 'linking_record_id', 'resolved_at', 'rules_fingerprint',
        'limit_applied',
    ]) }}
{%- endmacro %}


{#- Fingerprint of the settings a resolution depends on beyond the edges: a run with other
    limits, priorities or maximum size than the stored rows re-resolves everything. -#}
{% macro identity__rules_fingerprint() -%}
    {{ return(local_md5(tojson([
        var('identity_limits', {}), var('identity_priority'), var('max_cluster_size')
    ]))[:12]) }}
{%- endmacro %}


{#- Create a temporary table from `select_sql` and return it (gone at commit or rollback);
    `analyze` refreshes planner statistics (worth it for tables joined more than once). -#}
{% macro identity__temp_table(name, select_sql, analyze=false) -%}
    {%- set relation = make_temp_relation(this.incorporate(type='table'), '__' ~ name) -%}
    {% call statement('identity_' ~ name) -%}
        {{ get_create_table_as_sql(True, relation, select_sql) }}
    {%- endcall %}
    {% if analyze %}{% do identity__analyze(relation) %}{% endif %}
    {{ return(relation) }}
{%- endmacro %}


{#- The first column of the first row of a query. -#}
{% macro identity__scalar(select_sql) -%}
    {{ return(run_query(select_sql).columns[0].values()[0]) }}
{%- endmacro %}


{#- Rows affected by a statement (update or insert). -#}
{% macro identity__execute(name, statement_sql) -%}
    {% call statement(name) -%}{{ statement_sql }}{%- endcall %}
    {{ return(load_result(name)['response'].rows_affected) }}
{%- endmacro %}


{% macro identity__key(type_column, value_column) -%}
    {{ dbt.concat([type_column, "':'", value_column]) }}
{%- endmacro %}


{#- Drop the temporary tables of this run: temporary tables live as long as the session,
    and dbt reuses the session for the next models. -#}
{% macro identity__drop_temp_tables() -%}
    {{ return(adapter.dispatch('identity__drop_temp_tables', 'journeyflow')()) }}
{%- endmacro %}

{% macro default__identity__drop_temp_tables() %}{% endmacro %}

{% macro postgres__identity__drop_temp_tables() -%}
    {%- set prefix = make_temp_relation(this.incorporate(type='table'), '__').identifier[:-12] -%}
    {%- set names = run_query(
        "select relname from pg_class where relnamespace = pg_my_temp_schema()"
        ~ " and relkind = 'r' and starts_with(relname, '" ~ prefix ~ "')"
    ).columns[0].values() -%}
    {% if names | length > 0 %}
        {% do run_query('drop table ' ~ names | map('tojson') | join(', ')) %}
    {% endif %}
{%- endmacro %}


{#- Refresh planner statistics of a freshly built table. -#}
{% macro identity__analyze(relation) -%}
    {%- set analyze_sql = identity_analyze_sql(relation) | trim -%}
    {% if analyze_sql %}{% do run_query(analyze_sql) %}{% endif %}
{%- endmacro %}

{#-
    Values listed in var('identity_blocklist') never act as identifiers. Each entry is
    matched lower-cased and trimmed; entries that look like phone numbers are also matched
    in their normalised E.164 (+1) form, so '0000000000' blocks '+10000000000' too.
-#}
{% macro identity_blocklist_values() -%}
    {%- set values = [] -%}
    {%- for entry in var('identity_blocklist', []) -%}
        {%- set cleaned = (entry | string | trim | lower) -%}
        {%- if cleaned not in values -%}{%- do values.append(cleaned) -%}{%- endif -%}
        {%- set digits = modules.re.sub('[^0-9]', '', cleaned) -%}
        {%- if digits | length == 10 -%}
            {%- set phone = '+1' ~ digits -%}
        {%- elif digits | length == 11 and digits[0] == '1' -%}
            {%- set phone = '+' ~ digits -%}
        {%- else -%}
            {%- set phone = none -%}
        {%- endif -%}
        {%- if phone is not none and phone not in values -%}{%- do values.append(phone) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(values) }}
{%- endmacro %}

{#- Boolean SQL expression: true when the identifier value is blocklisted. -#}
{% macro is_blocklisted_identifier(column_name) -%}
    {%- set values = identity_blocklist_values() -%}
    {%- if values | length == 0 -%}
        (1 = 0)
    {%- else -%}
        (lower({{ column_name }}) in (
            {%- for value in values -%}
                '{{ dbt.escape_single_quotes(value) }}'{{ ", " if not loop.last }}
            {%- endfor -%}
        ))
    {%- endif -%}
{%- endmacro %}

{#-
    An e-mail in the form identities are matched on: the normalised address (staging), plus
    the optional rules of var('identity_email_rules'), all off by default:
      strip_plus_tags  'ann+shop@x.com' -> 'ann@x.com'
      strip_dots       'a.n.n@gmail.com' -> 'ann@gmail.com', only for the domains listed in
                       dot_insensitive_domains (providers that ignore dots)
    Values without an '@' are left as they are.
-#}
{% macro identity_email(column_name) -%}
    {%- set rules = var('identity_email_rules', {}) -%}
    {%- if not (rules.get('strip_plus_tags') or rules.get('strip_dots')) -%}
        {{ return(column_name) }}
    {%- endif -%}
    {%- set local_part = dbt.split_part(column_name, "'@'", 1) -%}
    {%- set domain = dbt.split_part(column_name, "'@'", 2) -%}
    {%- if rules.get('strip_plus_tags') -%}
        {%- set local_part = dbt.split_part(local_part, "'+'", 1) -%}
    {%- endif -%}
    {%- if rules.get('strip_dots') -%}
        {%- set domains = rules.get('dot_insensitive_domains', ['gmail.com', 'googlemail.com']) -%}
        {%- set local_part -%}
            case
                when {{ domain }} in (
                    {%- for name in domains -%}
                        '{{ dbt.escape_single_quotes(name | lower) }}'{{ ", " if not loop.last }}
                    {%- endfor -%}
                ) then {{ dbt.replace(local_part, "'.'", "''") }}
                else {{ local_part }}
            end
        {%- endset -%}
    {%- endif -%}
    case
        when {{ column_name }} like '%_@_%'
            then {{ dbt.concat([local_part, "'@'", domain]) }}
        else {{ column_name }}
    end
{%- endmacro %}

{#-
    Fixed-width (20 characters) text that sorts like the timestamp, so that
    min(identity_time_key(t) || x) picks the x of the earliest t (ties: smallest x) in a
    plain, hash-aggregatable min(); identity_after_time_key takes x back out.
-#}
{% macro identity_time_key(column_name) -%}
    {{ return(adapter.dispatch('identity_time_key', 'journeyflow')(column_name)) }}
{%- endmacro %}

{% macro default__identity_time_key(column_name) -%}
    lpad(cast({{ dbt.datediff("cast('1970-01-01' as " ~ dbt.type_timestamp() ~ ")", column_name, 'second') }} + 10000000000 as {{ dbt.type_string() }}), 20, '0')
{%- endmacro %}

{% macro postgres__identity_time_key(column_name) -%}
    {#- microseconds since 1653 (never negative), zero-padded -#}
    lpad(cast(cast((extract(epoch from {{ column_name }}) + 10000000000) * 1000000 as bigint) as text), 20, '0')
{%- endmacro %}

{% macro identity_after_time_key(expression) -%}
    {{ return(adapter.dispatch('identity_after_time_key', 'journeyflow')(expression)) }}
{%- endmacro %}

{% macro default__identity_after_time_key(expression) -%}
    {{ dbt.right(expression, dbt.length(expression) ~ ' - 20') }}
{%- endmacro %}

{% macro postgres__identity_after_time_key(expression) -%}
    substr({{ expression }}, 21)
{%- endmacro %}

{#- Stable profile key derived from the surviving identifier of a cluster. -#}
{% macro profile_id(identifier_type, identifier_value) -%}
    {{ profile_id_of_key(dbt.concat([identifier_type, "':'", identifier_value])) }}
{%- endmacro %}

{#- The same, from an identifier_key (type || ':' || value). -#}
{% macro profile_id_of_key(identifier_key) -%}
    {{ dbt.concat(["'p_'", "left(" ~ dbt.hash(identifier_key) ~ ", 16)"]) }}
{%- endmacro %}

{#-
    SQL that sizes the transaction for the big set operations of the identity models (a
    pre-hook; the resolution runs it itself): PostgreSQL's default work_mem (4MB) makes
    the aggregations over every identifier spill to disk. var('identity_work_mem').
    JIT compilation is switched off: the resolution runs dozens of short statements whose
    estimated cost is high enough to trigger it, and compiling each costs more (about half
    a second) than it saves.
-#}
{% macro identity_session_settings() -%}
    {{ return(adapter.dispatch('identity_session_settings', 'journeyflow')()) }}
{%- endmacro %}

{% macro default__identity_session_settings() %}{% endmacro %}

{% macro postgres__identity_session_settings() -%}
    set local work_mem = '{{ var("identity_work_mem", "256MB") }}';
    set local jit = off
{%- endmacro %}

{#- SQL refreshing planner statistics of a relation (a post-hook: incremental runs look a
    few identifiers up in big tables, and need the statistics to use the indexes). -#}
{% macro identity_analyze_sql(relation) -%}
    {{ return(adapter.dispatch('identity_analyze_sql', 'journeyflow')(relation)) }}
{%- endmacro %}

{% macro default__identity_analyze_sql(relation) %}{% endmacro %}

{% macro postgres__identity_analyze_sql(relation) -%}
    analyze {{ relation }}
{%- endmacro %}

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

{#- Stable profile key derived from the surviving identifier of a cluster. -#}
{% macro profile_id(identifier_type, identifier_value) -%}
    {{ dbt.concat(["'p_'", "left(" ~ dbt.hash(dbt.concat([identifier_type, "':'", identifier_value])) ~ ", 16)"]) }}
{%- endmacro %}

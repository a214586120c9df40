{#-
    Normalise an e-mail address for identity matching: surrounding whitespace removed,
    lower-cased, and null when nothing is left.
-#}
{% macro normalize_email(column_name) -%}
    {{ return(adapter.dispatch('normalize_email', 'journeyflow')(column_name)) }}
{%- endmacro %}

{% macro default__normalize_email(column_name) -%}
    nullif(lower(trim({{ column_name }})), '')
{%- endmacro %}

{% macro postgres__normalize_email(column_name) -%}
    {#- also strips tabs, newlines and other whitespace that trim() leaves in place -#}
    nullif(lower(regexp_replace({{ column_name }}, '^\s+|\s+$', '', 'g')), '')
{%- endmacro %}

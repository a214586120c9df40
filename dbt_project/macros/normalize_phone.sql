{#-
    Normalise a phone number to E.164 with the default country US (+1):
      - keep digits only;
      - 10 digits              -> '+1' || digits
      - 11 digits starting 1   -> '+'  || digits
      - anything else          -> null (not usable for matching)
-#}
{% macro normalize_phone(column_name) -%}
    {{ return(adapter.dispatch('normalize_phone', 'journeyflow')(column_name)) }}
{%- endmacro %}

{% macro postgres__normalize_phone(column_name) -%}
    {%- set digits = "regexp_replace(" ~ column_name ~ ", '[^0-9]', '', 'g')" -%}
    case
        when length({{ digits }}) = 10 then '+1' || {{ digits }}
        when length({{ digits }}) = 11 and left({{ digits }}, 1) = '1' then '+' || {{ digits }}
    end
{%- endmacro %}

{#- Portable fallback without regular expressions: strips the usual separators only,
    so a value holding letters is not caught here (adapters with regex support should get
    their own `<adapter>__normalize_phone`). -#}
{% macro default__normalize_phone(column_name) -%}
    {%- set digits = column_name -%}
    {%- set digits = dbt.replace(digits, "' '", "''") -%}
    {%- set digits = dbt.replace(digits, "'('", "''") -%}
    {%- set digits = dbt.replace(digits, "')'", "''") -%}
    {%- set digits = dbt.replace(digits, "'-'", "''") -%}
    {%- set digits = dbt.replace(digits, "'.'", "''") -%}
    {%- set digits = dbt.replace(digits, "'+'", "''") -%}
    {%- set digits = dbt.replace(digits, "'/'", "''") -%}
    case
        when {{ dbt.length(digits) }} = 10 then {{ dbt.concat(["'+1'", digits]) }}
        when {{ dbt.length(digits) }} = 11 and {{ dbt.position("'1'", digits) }} = 1
            then {{ dbt.concat(["'+'", digits]) }}
    end
{%- endmacro %}

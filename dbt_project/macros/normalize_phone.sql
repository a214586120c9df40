{#-
    Normalise a phone number to E.164 ('+' country code and national number, digits only),
    using the record's country (ISO code) for numbers written in national form:
      - written with a leading '+'            -> '+' || digits
      - international prefix 00 (011 in +1)   -> '+' || digits after the prefix
      - national form, country code 1 (NANP)  -> 10 digits get '+1', 11 digits starting 1 get '+'
      - national form, other countries        -> the trunk '0' is dropped, the country code added
    Countries come from var('phone_calling_codes'); a missing or unknown country means
    var('phone_default_country'). A result that is not plausible E.164 (8-15 digits; exactly
    11 for +1) is null, so it never links anyone.
-#}
{% macro normalize_phone(column_name, country_column=none) -%}
    {{ return(adapter.dispatch('normalize_phone', 'journeyflow')(column_name, country_column)) }}
{%- endmacro %}

{#- SQL expression: the international calling code (digits, as text) of a country column. -#}
{% macro phone_calling_code(country_column=none) -%}
    {%- set codes = var('phone_calling_codes') -%}
    {%- set default_code = codes[var('phone_default_country') | upper] -%}
    {%- if country_column is none -%}
        '{{ default_code }}'
    {%- else -%}
        case upper(trim({{ country_column }}))
            {%- for country, code in codes.items() %}
            when '{{ country | upper }}' then '{{ code }}'
            {%- endfor %}
            else '{{ default_code }}'
        end
    {%- endif -%}
{%- endmacro %}

{% macro postgres__normalize_phone(column_name, country_column) -%}
    {%- set digits = "regexp_replace(" ~ column_name ~ ", '[^0-9]', '', 'g')" -%}
    {%- set code = phone_calling_code(country_column) -%}
    {%- set candidate -%}
        case
            when ltrim({{ column_name }}) like '+%' then '+' || {{ digits }}
            when ({{ code }}) = '1' and {{ digits }} like '011%' then '+' || substr({{ digits }}, 4)
            when ({{ code }}) <> '1' and {{ digits }} like '00%' then '+' || substr({{ digits }}, 3)
            when ({{ code }}) = '1' and length({{ digits }}) = 10 then '+1' || {{ digits }}
            when ({{ code }}) = '1' and length({{ digits }}) = 11 and {{ digits }} like '1%'
                then '+' || {{ digits }}
            when ({{ code }}) <> '1' and {{ digits }} like '0%'
                then '+' || ({{ code }}) || substr({{ digits }}, 2)
            when ({{ code }}) <> '1' then '+' || ({{ code }}) || {{ digits }}
        end
    {%- endset -%}
    case
        when ({{ candidate }}) ~ '^\+[1-9][0-9]{7,14}$'
            and (({{ candidate }}) not like '+1%' or length({{ candidate }}) = 12)
            then {{ candidate }}
    end
{%- endmacro %}

{#- Portable fallback without regular expressions: strips the usual separators only, so a
    value holding letters is not caught here (adapters with regex support should get their
    own `<adapter>__normalize_phone`). -#}
{% macro default__normalize_phone(column_name, country_column) -%}
    {%- set digits = column_name -%}
    {%- for separator in [' ', '(', ')', '-', '.', '+', '/'] -%}
        {%- set digits = dbt.replace(digits, "'" ~ separator ~ "'", "''") -%}
    {%- endfor -%}
    {%- set code = phone_calling_code(country_column) -%}
    {%- set length = dbt.length(digits) -%}
    {%- set plus_written = dbt.position("'+'", dbt.replace(column_name, "' '", "''")) ~ " = 1" -%}
    {%- set candidate -%}
        case
            when {{ plus_written }} then {{ dbt.concat(["'+'", digits]) }}
            when ({{ code }}) = '1' and {{ dbt.position("'011'", digits) }} = 1
                then {{ dbt.concat(["'+'", dbt.right(digits, length ~ " - 3")]) }}
            when ({{ code }}) <> '1' and {{ dbt.position("'00'", digits) }} = 1
                then {{ dbt.concat(["'+'", dbt.right(digits, length ~ " - 2")]) }}
            when ({{ code }}) = '1' and {{ length }} = 10 then {{ dbt.concat(["'+1'", digits]) }}
            when ({{ code }}) = '1' and {{ length }} = 11 and {{ dbt.position("'1'", digits) }} = 1
                then {{ dbt.concat(["'+'", digits]) }}
            when ({{ code }}) <> '1' and {{ dbt.position("'0'", digits) }} = 1
                then {{ dbt.concat(["'+'", code, dbt.right(digits, length ~ " - 1")]) }}
            when ({{ code }}) <> '1' then {{ dbt.concat(["'+'", code, digits]) }}
        end
    {%- endset -%}
    case
        when {{ dbt.length(candidate) }} between 9 and 16
            and ({{ dbt.position("'+1'", candidate) }} <> 1 or {{ dbt.length(candidate) }} = 12)
            then {{ candidate }}
    end
{%- endmacro %}

{#-
    The few expressions DuckDB and Spark spell differently, each dispatched on the adapter
    (duckdb__ / spark__). Everything else in the models is SQL both engines read, or dbt's
    cross-database macros (dbt.dateadd, dbt.date_trunc, dbt.datediff, dbt.type_string...).
-#}

{#- The text of the JSON value at `path` ('$.a.b') of a JSON column, NULL when missing: DuckDB's
    ->> operator; Spark keeps JSON as a string and reads it with get_json_object. -#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text')(column, path)) }}
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    ({{ column }} ->> '{{ path }}')
{%- endmacro %}

{% macro spark__json_text(column, path) -%}
    get_json_object({{ column }}, '{{ path }}')
{%- endmacro %}


{#- A count at `path` of a JSON column: an int, a float or a numeric string, rounded half away
    from zero; NULL when missing or not a finite number. DuckDB's try_cast to bigint rounds so;
    Spark's cast truncates a decimal string ('12.7' -> 12) and reads no exponent, so there it
    goes through double (counts past 2^53 are not expected in a daily report). -#}
{% macro json_count(column, path) -%}
    {{ return(adapter.dispatch('json_count')(column, path)) }}
{%- endmacro %}

{% macro duckdb__json_count(column, path) -%}
    try_cast({{ json_text(column, path) }} as bigint)
{%- endmacro %}

{% macro spark__json_count(column, path) -%}
    {%- set number = 'try_cast(' ~ json_text(column, path) ~ ' as double)' -%}
    cast(round(case when abs({{ number }}) < 9.2e18 then {{ number }} end) as bigint)
{%- endmacro %}


{#- A number at `path` of a JSON column, NULL when missing or not a number (the same on both). -#}
{% macro json_number(column, path) -%}
    try_cast({{ json_text(column, path) }} as double)
{%- endmacro %}


{#- The first element of a list (NULL for an empty or NULL list): DuckDB's lists count from 1,
    Spark's arrays from 0 (element_at counts from 1 but fails on an empty array). -#}
{% macro first_element(list) -%}
    {{ return(adapter.dispatch('first_element')(list)) }}
{%- endmacro %}

{% macro duckdb__first_element(list) -%}
    {{ list }}[1]
{%- endmacro %}

{% macro spark__first_element(list) -%}
    try_element_at({{ list }}, 1)
{%- endmacro %}


{#- Milliseconds since the epoch of a timestamp (UTC): DuckDB's epoch_ms, Spark's unix_millis
    (which reads a timestamp without time zone in the session's zone, UTC: see profiles.yml). -#}
{% macro epoch_millis(timestamp) -%}
    {{ return(adapter.dispatch('epoch_millis')(timestamp)) }}
{%- endmacro %}

{% macro duckdb__epoch_millis(timestamp) -%}
    epoch_ms({{ timestamp }})
{%- endmacro %}

{% macro spark__epoch_millis(timestamp) -%}
    unix_millis(cast({{ timestamp }} as timestamp))
{%- endmacro %}


{#- A timestamp `milliseconds` earlier, to the millisecond: DuckDB subtracts an interval; Spark's
    timestampadd keeps the milliseconds that dbt.dateadd's Spark version (seconds) drops. -#}
{% macro minus_milliseconds(timestamp, milliseconds) -%}
    {{ return(adapter.dispatch('minus_milliseconds')(timestamp, milliseconds)) }}
{%- endmacro %}

{% macro duckdb__minus_milliseconds(timestamp, milliseconds) -%}
    ({{ timestamp }} - to_milliseconds({{ milliseconds }}))
{%- endmacro %}

{% macro spark__minus_milliseconds(timestamp, milliseconds) -%}
    timestampadd(millisecond, -({{ milliseconds }}), {{ timestamp }})
{%- endmacro %}


{#- The ORDER BY that stores a mart's rows in the order of its day (or month) column. DuckDB
    keeps a table's rows in the order they were inserted, and each row group (about 122,880
    rows) carries min/max statistics. A backfill's rows in day order give each row group a few
    days, so a later build or query of one day reads that day's row groups only; unsorted,
    every row group of a year's backfill spans the whole year (a query of 8 days of a year's
    fct_streams: 109 MB of memory unsorted, 20 MB sorted). Spark's marts are partitioned by
    that column already: nothing there. -#}
{% macro in_day_order(column) -%}
    {{ return(adapter.dispatch('in_day_order')(column)) }}
{%- endmacro %}

{% macro duckdb__in_day_order(column) -%}
    order by {{ column }}
{%- endmacro %}

{% macro spark__in_day_order(column) -%}
{%- endmacro %}

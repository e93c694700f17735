{#-
    The rows of the days being built: `column` within one of built_day_ranges(), a list of
    [first, last] pairs (inclusive), each widened by `lookback_days`
    before its first day (for trailing windows). The pairs need not touch: one invocation
    builds any set of days. With grain='month', `column` holds month starts and the rows are
    those of the months holding a day built. True when no days are given, so a plain
    `dbt build` builds every day.
-#}
{% macro partition_window(column, lookback_days=0, grain='day') -%}
    {%- set ranges = built_day_ranges() -%}
    {%- if ranges -%}
        ({%- for first, last in ranges %}
            {%- set first_day = "cast('" ~ first ~ "' as date)" %}
            {{ 'or ' if not loop.first }}{{ column }} between
            {%- if grain == 'month' %}
                cast({{ dbt.date_trunc('month', first_day) }} as date)
            {%- else %}
                cast({{ dbt.dateadd('day', -lookback_days, first_day) }} as date)
            {%- endif %}
                and cast('{{ last }}' as date)
        {%- endfor %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#-
    The days being built as [first, last] pairs, or none for every day: var('day_ranges') when
    given on the command line, else the JSON that Dagster puts in the environment variable
    MUSIC_ANALYTICS_DBT_DAY_RANGES (music_analytics/defs/transform/dbt_build.py). The variable
    is read only while dbt executes, never while it parses, so a new set of days leaves dbt's
    saved parse state valid (a changed --vars makes dbt parse the whole project again).
-#}
{% macro built_day_ranges() -%}
    {%- set ranges = var('day_ranges', none) -%}
    {%- if ranges is none and execute -%}
        {%- set ranges = fromjson(env_var('MUSIC_ANALYTICS_DBT_DAY_RANGES', 'null')) -%}
    {%- endif -%}
    {%- do return(ranges) -%}
{%- endmacro %}

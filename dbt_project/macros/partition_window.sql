{#-
    The rows of the days being built: `column` within one of var('day_ranges'), a list of
    [first, last] pairs (inclusive) that Dagster passes, each widened by `lookback_days`
    before its first day (for trailing windows). The pairs need not touch: one invocation
    builds any set of days. With grain='month', `column` holds month starts and the rows are
    those of the months holding a day built. True when the var is unset, so a plain
    `dbt build` builds every day.
-#}
{% macro partition_window(column, lookback_days=0, grain='day') -%}
    {%- set ranges = var('day_ranges', none) -%}
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

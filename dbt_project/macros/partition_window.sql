{#-
    The rows of the days being built: `column` within one of var('day_ranges'), a list of
    [first, last] pairs (inclusive) that Dagster passes, each widened by `lookback_days`
    before its first day (for trailing windows). The pairs need not touch: one invocation
    builds any set of days. True when the var is unset, so a plain `dbt build` builds every day.
-#}
{% macro partition_window(column, lookback_days=0) -%}
    {%- set ranges = var('day_ranges', none) -%}
    {%- if ranges -%}
        ({%- for first, last in ranges %}
            {{ 'or ' if not loop.first }}{{ column }} between
                cast({{ dbt.dateadd('day', -lookback_days, "cast('" ~ first ~ "' as date)") }} as date)
                and cast('{{ last }}' as date)
        {%- endfor %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

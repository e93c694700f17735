{#-
    The rows of the partition range Dagster is building: `column` between var('min_date')
    (less `lookback_days`, for trailing windows) and var('max_date'). True when the vars are
    unset, so a plain `dbt build` builds every day.
-#}
{% macro partition_window(column, lookback_days=0) -%}
    {%- set min_date = var('min_date', none) -%}
    {%- set max_date = var('max_date', none) -%}
    {%- if min_date and max_date -%}
        {{ column }} between
            cast({{ dbt.dateadd('day', -lookback_days, "cast('" ~ min_date ~ "' as date)") }} as date)
            and cast('{{ max_date }}' as date)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

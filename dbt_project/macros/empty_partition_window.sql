{#-
    Pre-hook for incremental marts whose source can lose a day's rows (a DSP report replaced by
    an empty one, events deleted or truncated through the Data Sources API, a user deleted):
    delete+insert only replaces the days that still have rows, so first empty every day (with
    grain='month': every month) of the partition range being built. A no-op on the first build.
-#}
{% macro empty_partition_window(column, grain='day') -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ partition_window(column, grain=grain) }}
    {%- endif -%}
{%- endmacro %}

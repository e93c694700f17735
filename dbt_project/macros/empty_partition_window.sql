{#-
    Pre-hook for incremental marts whose source can lose a day's rows (a DSP report replaced by
    an empty one): delete+insert only replaces the days that still have rows, so first empty
    every day of the partition range being built. A no-op on the first build.
-#}
{% macro empty_partition_window(column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ partition_window(column) }}
    {%- endif -%}
{%- endmacro %}

{#-
    Pre-hook for incremental marts whose source can lose a day's rows (a DSP report replaced by
    an empty one, events deleted or truncated through the Data Sources API, a user deleted):
    the incremental strategy only replaces the days that still have rows, so first empty every
    day (with grain='month': every month) of the partition range being built. A no-op on the
    first build.

    DuckDB deletes the rows (delete+insert then inserts the days'). Spark's Parquet tables
    cannot delete rows: their partitions (one per day, partition_by) are dropped instead, and
    insert_overwrite writes back the days that have rows. A plain build (no days given) drops
    nothing: it overwrites every partition it has rows for.
-#}
{% macro empty_partition_window(column, grain='day') -%}
    {%- if is_incremental() -%}
        {{ adapter.dispatch('empty_partition_window')(column, grain) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__empty_partition_window(column, grain) -%}
    delete from {{ this }} where {{ partition_window(column, grain=grain) }}
{%- endmacro %}

{% macro spark__empty_partition_window(column, grain) -%}
    {%- set values = partition_values(grain) -%}
    {%- if values -%}
        alter table {{ this }} drop if exists
        {%- for value in values %}
            partition ({{ column }} = date '{{ value }}'){{ ',' if not loop.last }}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}


{#- The partition column's values of the days being built (month starts with grain='month'),
    as YYYY-MM-DD strings, or [] when no days are given. -#}
{% macro partition_values(grain='day') -%}
    {%- set values = [] -%}
    {%- for first, last in built_day_ranges() or [] -%}
        {%- set day = modules.datetime.date.fromisoformat(first | string) -%}
        {%- set end = modules.datetime.date.fromisoformat(last | string) -%}
        {%- for offset in range((end - day).days + 1) -%}
            {%- set value = day + modules.datetime.timedelta(days=offset) -%}
            {%- if grain == 'month' -%}
                {%- set value = value.replace(day=1) -%}
            {%- endif -%}
            {%- if value.isoformat() not in values -%}
                {%- do values.append(value.isoformat()) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- do return(values) -%}
{%- endmacro %}


{#- A mart's partition_by: its date column on Spark (one Parquet folder per day, what
    insert_overwrite replaces); none on DuckDB, whose tables are not partitioned. -#}
{% macro spark_partition_by(column) -%}
    {%- do return(column if target.type == 'spark' else none) -%}
{%- endmacro %}

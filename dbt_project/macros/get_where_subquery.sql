{#-
    dbt's hook for a test's `where` config, overridden so that a build's tests read only the
    days being built: with `where: __built_days__` (set for every test in dbt_project.yml) the
    tested model is filtered with partition_window on its partition column, so a day's build
    tests that day, not the whole history. The column is the model's unique_key for the
    incremental marts (for meta export_grain 'month', the months holding the days built), else
    its meta partition_column (staging views); a model with neither is tested whole, and so is
    every model when no days are given (a plain `dbt build` or `dbt test`). Any other `where`
    is applied as dbt does.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == '__built_days__' -%}
        {%- set where = built_days_filter(relation) -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}


{#- The partition_window filter of the model behind `relation`, or '' to test it whole. -#}
{% macro built_days_filter(relation) -%}
    {%- if not built_day_ranges() -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.alias == relation.identifier
            and node.schema == relation.schema -%}
        {%- set meta = node.config.meta or {} -%}
        {%- if node.config.materialized == 'incremental' and node.config.unique_key is string -%}
            {%- set column = node.config.unique_key -%}
        {%- else -%}
            {%- set column = meta.get('partition_column') -%}
        {%- endif -%}
        {%- if column and meta.get('export_grain') == 'month' -%}
            {%- do return(partition_window(column, grain='month')) -%}
        {%- elif column -%}
            {%- do return(partition_window(column)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do return('') -%}
{%- endmacro %}

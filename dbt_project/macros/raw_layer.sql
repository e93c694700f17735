{#-
    on-run-start: under Spark, the sources are the raw layer's Parquet files, Hive-partitioned
    by day (<raw layer>/<table>/date=YYYY-MM-DD/<load_id>.parquet, written by the raw writer),
    declared here as external tables raw.<table> over those folders, with the columns and
    DuckDB types that models/staging/_raw__sources.yml gives (the warehouse's raw tables', kept
    equal by a test). Tables, not `parquet.`<path>`` in a dispatched source(): source() stays
    dbt's own (lineage, docs, the Dagster asset graph), a table with a declared schema reads a
    table with no load yet (no folder: the writer makes none for a table without rows) as
    empty instead of failing to infer a schema, and the same names work on a cluster with a
    shared metastore. Declared unpartitioned: Spark discovers the date= folders whenever it
    reads (adding the column `date`, which the models do not use), so no partition list is
    kept in the metastore and every run reads every load written before it. Re-declared on
    every run (an external table: dropping it keeps the files). A no-op on DuckDB, whose raw
    tables are the warehouse's own.

    The location is MUSIC_ANALYTICS_RAW_LAYER_URI (default $MUSIC_ANALYTICS_HOME/raw): a local
    folder, or any URI the Spark cluster's Hadoop filesystems read (s3a://, abfss://, hdfs://).
-#}
{% macro register_raw_layer() -%}
    {{ return(adapter.dispatch('register_raw_layer')()) }}
{%- endmacro %}

{% macro default__register_raw_layer() -%}
    select 1
{%- endmacro %}

{% macro spark__register_raw_layer() -%}
    {%- if execute -%}
        {%- set root = raw_layer_uri() -%}
        {%- do run_query('create database if not exists raw') -%}
        {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
            {%- set columns = [] -%}
            {%- for column in source.columns.values() -%}
                {%- if not column.data_type -%}
                    {%- do exceptions.raise_compiler_error(
                        'source raw.' ~ source.name ~ ': column ' ~ column.name ~ ' has no '
                        ~ 'data_type in models/staging/_raw__sources.yml; give it the raw '
                        ~ 'table\'s DuckDB type') -%}
                {%- endif -%}
                {%- do columns.append('`' ~ column.name ~ '` ' ~ spark_type(column.data_type)) -%}
            {%- endfor -%}
            {%- set table = 'raw.' ~ source.identifier -%}
            {%- do run_query('drop table if exists ' ~ table) -%}
            {%- do run_query(
                'create table ' ~ table ~ ' (' ~ columns | join(', ') ~ ') using parquet '
                ~ "location '" ~ root ~ '/' ~ source.identifier ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}


{#- The raw layer's root, without a trailing slash. The writer's s3:// (pyarrow) is s3a:// to
    Hadoop's filesystems, which Spark reads through. -#}
{% macro raw_layer_uri() -%}
    {%- set default = env_var('MUSIC_ANALYTICS_HOME', '../data') ~ '/raw' -%}
    {%- set root = env_var('MUSIC_ANALYTICS_RAW_LAYER_URI', '') or default -%}
    {%- if root.startswith('s3://') -%}
        {%- set root = 's3a://' ~ root[5:] -%}
    {%- endif -%}
    {%- do return(root.rstrip('/')) -%}
{%- endmacro %}


{#- Spark's type for a raw column's DuckDB type. DuckDB's `timestamp` has no time zone, and
    neither has Spark's timestamp_ntz (the raw layer's files say so too); JSON is text. -#}
{% macro spark_type(duckdb_type) -%}
    {%- set types = {
        'varchar': 'string', 'json': 'string', 'integer': 'int', 'bigint': 'bigint',
        'double': 'double', 'boolean': 'boolean', 'date': 'date',
        'timestamp': 'timestamp_ntz', 'varchar[]': 'array<string>',
    } -%}
    {%- set key = duckdb_type | lower | trim -%}
    {%- if key not in types -%}
        {%- do exceptions.raise_compiler_error(
            'no Spark type for the raw layer\'s DuckDB type ' ~ duckdb_type
            ~ ': add it to spark_type() in macros/raw_layer.sql') -%}
    {%- endif -%}
    {%- do return(types[key]) -%}
{%- endmacro %}

{#-
    None of `columns` holds a NULL: one test (one scan of the model) for all of a model's
    required columns, instead of one dbt `not_null` test, one query and one Dagster check per
    column. A failure returns each column that has NULLs with their count.
-#}
{% test not_null_columns(model, columns) %}
with null_counts as (
    select
        {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as nulls_{{ loop.index }}
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ model }}
),

per_column as (
    {%- for column in columns %}
    select '{{ column }}' as column_name, nulls_{{ loop.index }} as null_rows from null_counts
    {{ "union all" if not loop.last }}
    {%- endfor %}
)

select * from per_column where null_rows > 0
{% endtest %}

{#-
    The model is `to` summed: per `date_column` value (a day, or with grain='month' a month
    start) and group of `keys`, each of `measures` equals the sum of the same column over the
    rows of `to` in that day or month; a group on one side only fails. Limited to the days (or
    the months holding the days) being built when Dagster gives them (built_day_ranges()).
-#}
{% test sums_match(model, to, keys, measures, date_column, to_date_column='stream_date', grain='day') %}
{%- if grain == 'month' -%}
    {%- set to_period = "cast(" ~ dbt.date_trunc('month', to_date_column) ~ " as date)" -%}
{%- else -%}
    {%- set to_period = to_date_column -%}
{%- endif -%}
with

periods_built as (
    select distinct {{ to_period }} as period
    from {{ to }}
    where {{ partition_window(to_date_column) }}
),

rolled_up as (
    select
        {{ date_column }} as period,
        {% for key in keys %}{{ key }},{% endfor %}
        {% for measure in measures %}cast(round({{ measure }}) as bigint) as {{ measure }}{{ ',' if not loop.last }}{% endfor %}
    from {{ model }}
    {% if grain == 'month' -%}
    where {{ date_column }} in (select period from periods_built)
    {%- else -%}
    where {{ partition_window(date_column) }}
    {%- endif %}
),

summed as (
    select
        {{ to_period }} as period,
        {% for key in keys %}{{ key }},{% endfor %}
        {% for measure in measures %}cast(round(sum({{ measure }})) as bigint) as {{ measure }}{{ ',' if not loop.last }}{% endfor %}
    from {{ to }}
    where {{ to_period }} in (select period from periods_built)
    group by {{ to_period }}{% for key in keys %}, {{ key }}{% endfor %}
),

only_rolled_up as (
    select * from rolled_up
    {{ dbt.except() }}
    select * from summed
),

only_summed as (
    select * from summed
    {{ dbt.except() }}
    select * from rolled_up
)

select 'in the model only' as found, * from only_rolled_up
union all
select 'in the sum of the source only' as found, * from only_summed
{% endtest %}

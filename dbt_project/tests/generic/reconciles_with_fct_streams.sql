{#-
    Per day, the mart's sum of `column_name` equals the number of rows of fct_streams (those
    matching `fct_filter`, e.g. one source, when given): no stream lost or counted twice
    between the fact and the mart. Limited to the days being built when Dagster gives them
    (built_day_ranges()).
-#}
{% test reconciles_with_fct_streams(model, column_name, fct_filter='true') %}
with mart as (
    select stream_date, sum({{ column_name }}) as mart_streams
    from {{ model }}
    where {{ partition_window('stream_date') }}
    group by stream_date
),

fact as (
    select stream_date, count(*) as fact_streams
    from {{ ref('fct_streams') }}
    where {{ partition_window('stream_date') }} and ({{ fct_filter }})
    group by stream_date
)

select
    coalesce(mart.stream_date, fact.stream_date) as stream_date,
    mart.mart_streams,
    fact.fact_streams
from mart
full outer join fact on mart.stream_date = fact.stream_date
where coalesce(mart.mart_streams, 0) <> coalesce(fact.fact_streams, 0)
{% endtest %}

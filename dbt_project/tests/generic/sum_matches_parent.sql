{#-
    Per group of `keys`, the model's sum of `column_name` equals `field` on the row with the
    same keys in `to` (e.g. a track's country streams add up to its total streams). Groups
    where either side is unknown (NULL) are not compared; a group without a row in `to`
    fails. Limited to the days being built (on `date_column`) when Dagster gives
    them (built_day_ranges()).
-#}
{% test sum_matches_parent(model, column_name, to, field, keys, date_column) %}
with children as (
    select {{ keys | join(', ') }}, sum({{ column_name }}) as child_total
    from {{ model }}
    where {{ partition_window(date_column) }}
    group by {{ keys | join(', ') }}
),

parents as (
    select {{ keys | join(', ') }}, {{ field }} as parent_total, true as has_parent
    from {{ to }}
    where {{ partition_window(date_column) }}
)

select
    {% for key in keys %}children.{{ key }}, {% endfor %}
    children.child_total,
    parents.parent_total
from children
left join parents
    on {% for key in keys %}children.{{ key }} = parents.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
where parents.has_parent is null
    or children.child_total <> parents.parent_total
{% endtest %}

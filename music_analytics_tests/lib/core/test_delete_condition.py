"""delete_condition: DuckDB's parse tree, whitelisted, re-emitted with every literal a parameter."""

from datetime import date, datetime

import duckdb
import pytest

from music_analytics.lib.core.delete_condition import ConditionError, parse_condition
from music_analytics.lib.events.validation import VALID_COLUMNS

ROWS = [
    ("u1", "ES", date(2025, 1, 1), datetime(2025, 1, 1, 10), 100, 1, "mobile"),
    ("u2", "US", date(2025, 1, 2), datetime(2025, 1, 2, 11), 200, 0, "desktop"),
    ("u3", "ES", date(2025, 1, 3), datetime(2025, 1, 3, 12), 300, 1, "mobile"),
]


@pytest.fixture(scope="module")
def conn():
    with duckdb.connect() as conn:
        conn.execute(
            "create table t (user_id varchar, country varchar, stream_date date, "
            "stream_start_time timestamp, stream_duration_seconds integer, completed integer, "
            "device_type varchar)"
        )
        conn.executemany("insert into t values (?, ?, ?, ?, ?, ?, ?)", ROWS)
        yield conn


@pytest.mark.parametrize(
    ("text", "users"),
    [
        ("user_id = 'u1'", ["u1"]),
        ("country = 'ES' and stream_date < '2025-01-03'", ["u1"]),
        ("country = 'ES' or stream_duration_seconds >= 200", ["u1", "u2", "u3"]),
        ("stream_start_time between '2025-01-02 00:00:00' and '2025-01-03 23:59:59'", ["u2", "u3"]),
        ("lower(country) in ('us') and not completed = 1", ["u2"]),
        ("device_type like 'mob%' and user_id <> 'u3'", ["u1"]),
        ("stream_date = date '2025-01-02'", ["u2"]),
        ("user_id not in ('u1', 'u2')", ["u3"]),
        ("USER_ID = 'u1' -- a trailing comment", ["u1"]),
        ("user_id = 'x'' or ''1''=''1'", []),  # the quote is data, not SQL
    ],
)
def test_conditions_select_the_rows_they_say(conn, text, users):
    condition = parse_condition(text, VALID_COLUMNS)
    assert "'" not in condition.sql  # every literal is a parameter
    rows = conn.execute(
        f"select user_id from t where {condition.sql} order by 1", condition.params
    ).fetchall()
    assert [r[0] for r in rows] == users


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("user_id = (select max(user_id) from t)", "subquery"),
        ("user_id in (select user_id from raw.stream_events)", "subquery"),
        ("exists (select 1)", "subquery"),
        ("1=1; drop table raw.stream_events", "not one SQL condition"),
        ("1=1 union select 2", "set operation"),
        ("1=1 limit 1", "LIMIT"),
        ("true group by 1", "GROUP BY"),
        ("read_csv('/etc/passwd') is not null", "read_csv"),
        ("user_id = getenv('HOME')", "getenv"),
        ("password = 'x'", "no column 'password'"),
        ("t.user_id = 'u1'", "plain column name"),
        ("user_id", "not a boolean"),
        ("'u1'", "not a boolean"),
        ("", "empty"),
        ("user_id = 'u1' and", "not one SQL condition"),
        ("cast(user_id as struct(a int)) is null", "casts"),
        ("count(*) > 1", "count"),
        ("row_number() over () = 1", "not allowed"),
        ("not " * 40 + "1=1", "too complex"),
        ("not " * 990 + "1=1", "too complex|not one SQL condition"),
        ("user_id = 'a' " * 2000, "over 4000"),
    ],
)
def test_hostile_conditions_are_refused_naming_the_problem(text, named):
    with pytest.raises(ConditionError, match=named.replace("(", r"\(").replace("*", r"\*")):
        parse_condition(text, VALID_COLUMNS)

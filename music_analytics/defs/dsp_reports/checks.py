"""Asset checks on one loaded DSP report partition, computed from what is in the warehouse."""

from datetime import date

import dagster as dg
import duckdb

from music_analytics.lib.dsp.catalog import Dsp

RECORD_COUNT_CHECK = "record_count_matches_meta"
COUNTRY_TOTALS_CHECK = "country_streams_match_total"

_RECORD_COUNT_SQL = """
select
    (select total_records from raw.dsp_report_loads
     where dsp = $dsp and report_date = $day order by loaded_at desc, load_id desc limit 1),
    (select count(*) from raw.dsp_report_records where dsp = $dsp and report_date = $day),
    (select count(*) from raw.dsp_report_quarantine where dsp = $dsp and report_date = $day)
"""

# Per record with country rows: per-country streams summed vs aggregated_data's total.
_COUNTRY_TOTALS_SQL = """
with countries as (
    select record_index, sum(try_cast(stats ->> $country_field as double)) as country_streams
    from raw.dsp_report_countries
    where dsp = $dsp and report_date = $day
    group by record_index
),
totals as (
    select
        r.record_index,
        r.track_id,
        try_cast(r.record -> 'aggregated_data' ->> $total_field as double) as total_streams,
        c.country_streams
    from raw.dsp_report_records as r
    join countries as c using (record_index)
    where r.dsp = $dsp and r.report_date = $day
)
select
    count(*) as compared,
    count(*) filter (where abs(total_streams - country_streams) > 0.5) as mismatched,
    list(track_id order by record_index) filter (
        where abs(total_streams - country_streams) > 0.5
    )[1:5] as example_track_ids
from totals
where total_streams is not null
"""


def record_count_result(conn: duckdb.DuckDBPyConnection, dsp: Dsp, day: date):
    """Records plus quarantined rows of the partition equal the report's meta.total_records."""
    expected, records, quarantined = conn.execute(
        _RECORD_COUNT_SQL, {"dsp": dsp.key, "day": day}
    ).fetchone()
    return dg.AssetCheckResult(
        check_name=RECORD_COUNT_CHECK,
        asset_key=dg.AssetKey(["raw", "dsp_report_records"]),
        passed=expected == records + quarantined,
        metadata={
            "meta_total_records": expected,
            "records": records,
            "records_quarantined": quarantined,
        },
    )


def country_totals_result(conn: duckdb.DuckDBPyConnection, dsp: Dsp, day: date):
    """Warns when some record's per-country streams do not add up to its aggregated total."""
    compared, mismatched, examples = conn.execute(
        _COUNTRY_TOTALS_SQL,
        {
            "dsp": dsp.key,
            "day": day,
            "country_field": dsp.country_streams_field,
            "total_field": dsp.total_streams_field,
        },
    ).fetchone()
    return dg.AssetCheckResult(
        check_name=COUNTRY_TOTALS_CHECK,
        asset_key=dg.AssetKey(["raw", "dsp_report_records"]),
        passed=mismatched == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "records_compared": compared,
            "records_mismatched": mismatched,
            "example_track_ids": dg.MetadataValue.json(examples or []),
        },
    )

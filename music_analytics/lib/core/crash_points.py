"""Named points where the crash tests SIGKILL the running process, to prove recovery.

With MUSIC_ANALYTICS_CRASH_AT=<point> in its environment, a process that reaches that point
kills its whole process group with SIGKILL (dbt's subprocess included), as `kill -9` or a
power cut would, at exactly that moment. Unset (always, outside the tests), a point does
nothing.
"""

import os
import signal

CRASH_AT = "MUSIC_ANALYTICS_CRASH_AT"
# The pipeline's points (test_crash_recovery kills `refresh` at each): inside a raw
# transaction; while dbt runs; between two marts' exports; after one day of a mart's staged
# export was moved into place (its other days still staged). "alert_queued" (an alert kept,
# not posted yet) is tested on its own.
POINTS = ("raw_load", "dbt", "export", "export_staged")
# The server's: after an import job landed its file, before the job is marked done
# (server/datasource_ops.py; test_datasource_ops kills `serve` there, and at raw_load).
SERVER_POINTS = ("job_landed",)
# The raw Parquet layer's (lib/core/raw_layer_store.py, raw_layer.py): a file written under its
# temporary name, not renamed; a file renamed into place, not yet in raw.raw_layer_files
# (test_raw_layer_crash kills `raw-layer sync` at each).
RAW_LAYER_POINTS = ("raw_layer_temp", "raw_layer_file")


def crash_point(name: str) -> None:
    """SIGKILL this process group here when MUSIC_ANALYTICS_CRASH_AT names this point."""
    if os.environ.get(CRASH_AT) != name:
        return
    if os.getpgrp() == os.getpid():  # a session of its own: take the children with it
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)

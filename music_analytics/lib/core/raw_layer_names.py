"""The raw Parquet layer's setting, its error and its temporary-file prefix.

Apart from the store (raw_layer_store.py), so that the modules which name the layer, check its
setting or catch its error (the dbt assets, the CLI, the sync) load without pyarrow: it is
imported only when a layer is written, and costs about 33 MB in every process that imports it
(the CLI's `refresh` among them, with the raw layer off by default).
"""

from __future__ import annotations

import re

URI_SETTING = "MUSIC_ANALYTICS_RAW_LAYER_URI"
TEMP_PREFIX = "_tmp-"  # a leading `_`: Spark and Hive skip the file
_USERINFO = re.compile(r"(?<=://)[^/@:]*:[^/@]*@")  # user:secret@, not abfs' container@


class RawLayerError(RuntimeError):
    """The raw layer cannot be read or written; the message names the setting and the fix."""


def redacted(uri: str) -> str:
    """The URI without a `user:secret@` part, for messages and the files ledger."""
    return _USERINFO.sub("***@", uri)

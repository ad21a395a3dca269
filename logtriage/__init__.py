"""logtriage: reads all the logs of an outage at once and ranks why the site is down."""

__version__ = "0.1.0"

import os as _os

# polars allocates through jemalloc, which by default keeps freed pages for 10 s: on a long pipe
# that is the difference between ~185 and ~205 MB of RSS. Returned after 1 s instead (no measured
# cost on the benchmark). Read when polars loads, so it is set before anything imports polars.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:1000,muzzy_decay_ms:0")

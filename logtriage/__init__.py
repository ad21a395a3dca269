"""logtriage: reads all the logs of an outage at once and ranks why the site is down."""

__version__ = "0.1.0"

import os as _os

# polars allocates through jemalloc, which by default keeps freed pages for 10 s, and they count
# in the RSS. Returned after 0.3 s instead: `analyze` on the 1.3 GB benchmark corpus peaked at
# 835-1088 MB with 1 s (over 1 GiB once in three runs) and 827-880 MB with 0.3 s (four runs), a
# few % slower; 0 s gives 750 MB but costs a third more time in page faults. Read when polars
# loads, so it is set before anything imports polars; a user's own setting wins.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:300,muzzy_decay_ms:0")

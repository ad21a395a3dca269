"""logtriage: reads all the logs of an outage at once and ranks why the site is down."""

__version__ = "0.1.0"

import os as _os

# polars allocates through jemalloc, which by default keeps freed pages for 10 s, and they count
# in the RSS. Returned after 1 s instead. On the 1.3 GB benchmark corpus (session 6, four blocks in
# flight): `scan --stats` 3-4 % faster than with 0.3 s (fewer page faults: 200-230k against
# 250-290k) for 50-90 MB more (610-690 MB); `analyze` 810-816 MB against 743-748 MB; a pipe of
# the corpus 156 MB against 153 MB. (Session 5, before the glibc and block-reader changes, 1 s had
# once taken analyze over 1 GiB: 0.3 s was chosen then.) 0 s costs a third more time in page
# faults. Read when polars loads, so it is set before anything imports polars; a user's own
# setting wins.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:1000,muzzy_decay_ms:0")


def _keep_block_buffers() -> None:
    """Let glibc's malloc keep the 16 MB blocks the block reader reads (CPython allocates them).

    By default each block is a fresh mmap (or heap top trimmed after it), so every block's pages
    fault in again: about 190k page faults and a third of a second of system time on the 1.3 GB
    benchmark corpus. Blocks below 32 MB come from the heap, which keeps up to 512 MB free.
    Only where glibc is the C library; anywhere else this does nothing.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 512 << 20)


_keep_block_buffers()

"""Files, directories, "-"/stdin and .gz (by magic bytes) -> chunks of physical lines.

Input is read in blocks, so memory stays bounded whatever the input size; a chunk closes when it
reaches its byte budget or, on a pipe, when no more data arrived for a short idle time (so
`kubectl logs -f | logtriage scan -` shows an event well under a second after its line arrives).
A line longer than MAX_LINE_BYTES is cut and counted; invalid UTF-8 is replaced, never fatal.
Problems with one input (unreadable, truncated gzip, symlink loop, empty directory) are reported
by name and reason, and the run goes on with the others.
"""

from __future__ import annotations

import io
import os
import select
import stat
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import polars as pl

MAX_LINE_BYTES = 1 << 20        # a line over 1 MiB is cut here (and counted)
# a pipe's RSS is ~90 MB + ~30x the chunk: 3 MB keeps a long pipe near 190 MB (4 MB: 200-210)
CHUNK_BYTES = 3 << 20           # a chunk of lines closes at this size ...
IDLE_SECONDS = 0.2              # ... or when a pipe has been quiet this long ...
MAX_AGE_SECONDS = 0.5           # ... or when its oldest line has waited this long
READ_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"

# Files in a walked directory that are certainly not logs.
_NOT_LOGS = (".png", ".jpg", ".jpeg", ".gif", ".pdf", ".zip", ".tar", ".so", ".pyc", ".html", ".md", ".toml",
             ".yaml", ".yml", ".py", ".sh")


@dataclass
class Input:
    """One source to read: a file path, or "-" for standard input."""

    path: str                  # as shown to the user
    root: str | None = None    # the directory argument it was found under, if any
    forced_format: str | None = None


@dataclass
class Chunk:
    """Complete physical lines of one input: `lines` (String Series, "\\n" and "\\r" removed)."""

    source: Input
    first_line: int            # 1-based number of lines[0]
    lines: pl.Series
    truncated: int = 0         # lines cut at MAX_LINE_BYTES in this chunk
    final: bool = False        # no more lines follow from this source
    flushed: bool = False      # closed early on a quiet or slow pipe: emit everything now


@dataclass
class Problem:
    """A path that was not (fully) read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Inputs:
    """What expand_paths found: the inputs to read and the paths that could not be used."""

    inputs: list[Input] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def split_format_suffix(arg: str, known_formats: set[str]) -> tuple[str, str | None]:
    """Return (path, format) for a `path:format` argument whose suffix names a known format."""
    if ":" in arg and not os.path.exists(arg):
        path, _, fmt = arg.rpartition(":")
        if fmt in known_formats:
            return path, fmt
    return arg, None


def expand_paths(args: list[str], known_formats: set[str] = frozenset()) -> Inputs:
    """Return the files to read for the command-line arguments (directories walked recursively)."""
    found = Inputs()
    for arg in args:
        if arg == "-":
            found.inputs.append(Input("-"))
            continue
        path, fmt = split_format_suffix(arg, set(known_formats))
        if not os.path.exists(path):
            found.problems.append(Problem(path, "no such file or directory"))
        elif os.path.isdir(path):
            before = len(found.inputs)
            _walk(path, fmt, found)
            if len(found.inputs) == before:
                found.problems.append(Problem(path, "directory holds no log files"))
        elif not os.access(path, os.R_OK):
            found.problems.append(Problem(path, "permission denied"))
        else:
            found.inputs.append(Input(path, None, fmt))
    return found


def _walk(root: str, fmt: str | None, found: Inputs) -> None:
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=lambda e: found.problems.append(
            Problem(e.filename or root, e.strerror or str(e)))):
        st = os.stat(dirpath)
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            found.problems.append(Problem(dirpath, "symlink loop: directory already visited, not read again"))
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            if name.lower().endswith(_NOT_LOGS):
                found.problems.append(Problem(path, "skipped: not a log file by its name"))
                continue
            try:
                st = os.stat(path)
            except OSError as err:
                found.problems.append(Problem(path, err.strerror or str(err)))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if not os.access(path, os.R_OK):
                found.problems.append(Problem(path, "permission denied"))
                continue
            found.inputs.append(Input(path, root, fmt))


def component_from_path(inp: Input) -> str | None:
    """Return the directory a file sits in, as a component name ("postgres/postgresql.log" -> "postgres").

    Only a directory below the walked root counts: files at the root level (or given alone) get
    their component from their lines or their format instead.
    """
    if inp.path == "-":
        return None
    parent = os.path.dirname(os.path.normpath(inp.path))
    if inp.root is not None:
        if os.path.normpath(parent) == os.path.normpath(inp.root):
            return None
    elif not os.path.dirname(inp.path):
        return None
    name = os.path.basename(parent)
    if not name or name in (".", "..", "log", "logs", "var", "tmp"):
        return None
    return name


# -- reading ---------------------------------------------------------------------------------

class _ReadError(Exception):
    pass


def _raw_blocks(inp: Input, idle: float) -> Iterator[bytes | None]:
    """Yield byte blocks as read (None = the pipe went idle), decompressing gzip by magic bytes."""
    if inp.path == "-":
        try:
            fd = sys.stdin.buffer.fileno()
        except (AttributeError, ValueError, io.UnsupportedOperation):
            fd = None
        if fd is None:  # an in-memory stdin (a test runner's): read it whole
            stream = getattr(sys.stdin, "buffer", sys.stdin)
            data = stream.read()
            yield data.encode() if isinstance(data, str) else data
            return
        reader = _fd_reader(fd, idle)
    else:
        try:
            fh = open(inp.path, "rb")
        except OSError as err:
            raise _ReadError(err.strerror or str(err)) from err
        reader = _file_reader(fh)
    first = b""
    for block in reader:
        if block is None:
            yield None
            continue
        first += block
        if len(first) >= 2 or not block:
            break
    if first[:2] == GZIP_MAGIC:
        yield from _gunzip(first, reader)
        return
    if first:
        yield first
    yield from reader


def _file_reader(fh: io.BufferedReader) -> Iterator[bytes]:
    with fh:
        while True:
            try:
                block = fh.read(READ_BYTES)
            except OSError as err:
                raise _ReadError(err.strerror or str(err)) from err
            if not block:
                return
            yield block


def _fd_reader(fd: int, idle: float) -> Iterator[bytes | None]:
    """Read a pipe or terminal as data arrives; yield None when it has been quiet for `idle` s."""
    try:
        is_file = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        is_file = False
    while True:
        if not is_file:
            ready, _, _ = select.select([fd], [], [], idle)
            if not ready:
                yield None
                continue
        block = os.read(fd, READ_BYTES)
        if not block:
            return
        yield block


def _gunzip(first: bytes, reader: Iterator[bytes | None]) -> Iterator[bytes | None]:
    """Decompress a gzip stream (several members allowed); a cut-off stream raises _ReadError."""
    d = zlib.decompressobj(wbits=31)
    pending = first
    while True:
        while pending:
            try:
                out = d.decompress(pending, READ_BYTES)
            except zlib.error as err:
                raise _ReadError(f"corrupt gzip data ({err})") from err
            if out:
                yield out
            if d.eof:
                pending = d.unused_data
                d = zlib.decompressobj(wbits=31) if pending else d
            else:
                pending = d.unconsumed_tail
        block = next(reader, b"")
        if block is None:
            yield None
            continue
        if not block:
            if not d.eof:
                tail = d.flush()
                if tail:
                    yield tail
                raise _ReadError("truncated gzip file (ends before its last block): lines up to the cut were read")
            return
        pending = block


def read_chunks(inp: Input, chunk_bytes: int = CHUNK_BYTES, idle: float = IDLE_SECONDS,
                on_problem: Callable[[Problem], None] | None = None) -> Iterator[Chunk]:
    """Yield chunks of complete lines from one input; the last chunk has final=True.

    A read problem (unreadable file, truncated gzip) goes to `on_problem` and ends this input
    after the lines read so far. Blocks are at most READ_BYTES (== MAX_LINE_BYTES), so only the
    line that spans a block boundary can be over the limit: that is the one checked and cut.
    """
    parts: list[bytes] = []     # blocks not yet emitted; all but the last end inside lines or at "\n"
    size = 0                    # bytes in parts
    cur = 0                     # length of the unfinished last line in parts
    next_line = 1
    discarding = False          # inside a line already cut at MAX_LINE_BYTES: drop up to its newline
    truncated = 0
    stream = inp.path == "-"
    oldest = 0.0                # when the oldest byte still unsent arrived (streams only)

    def emit(final: bool = False, flushed: bool = False) -> Chunk | None:
        """Emit every complete line held; keep the unfinished one."""
        nonlocal parts, size, next_line, truncated
        data = b"".join(parts)
        if final and data and not data.endswith(b"\n"):
            data += b"\n"
        cut = len(data) if final else len(data) - cur
        block, rest = data[:cut], data[cut:]
        parts, size = ([rest], len(rest)) if rest else ([], 0)
        lines = lines_from_bytes(block)
        chunk = Chunk(inp, next_line, lines, truncated, final, flushed)
        next_line += len(lines)
        truncated = 0
        return chunk

    blocks = _raw_blocks(inp, idle)
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            break
        except (_ReadError, OSError) as err:
            if on_problem:
                reason = str(err) if isinstance(err, _ReadError) else (err.strerror or str(err))
                on_problem(Problem(inp.path, reason))
            break
        if block is None:           # the pipe went quiet: flush complete lines now
            if size - cur > 0:
                yield emit(flushed=True)
            continue
        if stream:
            now = time.monotonic()
            if not size:
                oldest = now
            elif now - oldest > MAX_AGE_SECONDS and size - cur > 0:   # a steady trickle: flush by age
                yield emit(flushed=True)
                oldest = now
        if discarding:
            nl = block.find(b"\n")
            if nl < 0:
                continue
            block = block[nl + 1:]
            discarding = False
        first_nl = block.find(b"\n")
        head = len(block) if first_nl < 0 else first_nl
        if cur + head > MAX_LINE_BYTES:
            # the unfinished line grows past the limit: keep its head, drop the rest up to "\n"
            keep = MAX_LINE_BYTES - cur
            parts.append(_cut_utf8(block[:keep]) + b"\n")
            size += len(parts[-1])
            truncated += 1
            cur = 0
            if first_nl < 0:
                discarding = True
                continue
            block = block[first_nl + 1:]
        if block:
            parts.append(block)
            size += len(block)
            last_nl = block.rfind(b"\n")
            cur = cur + len(block) if last_nl < 0 else len(block) - last_nl - 1
        if size >= chunk_bytes and size - cur > 0:
            yield emit()
    yield emit(final=True)


NATIVE_MIN_BYTES = 16 << 20     # files from this size on are read in large blocks by polars' own reader
BLOCK_BYTES = 16 << 20          # one such block (complete lines); pipeline.BLOCK_WORKERS are parsed at a time
SAMPLE_BYTES = 64 << 10         # what is read first to learn a file's format
PROBE_BYTES = 64 << 10          # where the last whole line of a block is looked for first


def native_ok(inp: Input) -> bool:
    """Whether `inp` is a file large enough to be read in blocks (plain or gzip; not a pipe)."""
    if inp.path == "-":
        return False
    try:
        return os.path.getsize(inp.path) >= NATIVE_MIN_BYTES
    except OSError:
        return False


def line_blocks(inp: Input, size: int | None = None,
                on_problem: Callable[[Problem], None] | None = None) -> Iterator[bytes]:
    """Blocks of about `size` bytes of lines (gzip decompressed); block_lines() reads their lines.

    A block's lines are those up to its last "\n"; what follows it (part of a line) is read
    again at the start of the next block, so a plain file is read with one positioned read per
    block and no copy. The last block ends with "\n". A read problem (unreadable, truncated
    gzip) goes to `on_problem` and ends the input after the lines read so far, as in read_chunks().
    """
    size = size or BLOCK_BYTES
    try:
        with open(inp.path, "rb") as fh:
            gzipped = fh.read(2) == GZIP_MAGIC
            if not gzipped:
                yield from _plain_blocks(fh.fileno(), size)
                return
    except OSError as err:
        if on_problem:
            on_problem(Problem(inp.path, err.strerror or str(err)))
        return
    parts: list[bytes] = []
    held = 0
    try:
        for block in _raw_blocks(inp, IDLE_SECONDS):
            if not block:
                continue
            parts.append(block)
            held += len(block)
            if held >= size:
                data = b"".join(parts)
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut]
                    parts, held = ([data[cut:]], len(data) - cut) if cut < len(data) else ([], 0)
    except (_ReadError, OSError) as err:
        if on_problem:
            on_problem(Problem(inp.path, str(err) if isinstance(err, _ReadError) else (err.strerror or str(err))))
    data = b"".join(parts)
    if data:
        yield data if data.endswith(b"\n") else data + b"\n"


def _plain_blocks(fd: int, size: int) -> Iterator[bytes]:
    """line_blocks() of an uncompressed file: os.pread from the end of the last whole line.

    The end of a block's last whole line is looked for in the last PROBE_BYTES before its size, so
    the block is read to exactly there (no copy of 16 MB to drop a partial line).
    """
    at = 0
    probe = min(PROBE_BYTES, size // 4)
    while True:
        tail = os.pread(fd, probe, at + size - probe)
        end = tail.rfind(b"\n") + 1
        if len(tail) == probe and end:
            want = size - probe + end
            data = os.pread(fd, want, at)
            if len(data) == want:
                yield data
                at += want
                continue
        data = os.pread(fd, size, at)
        eof = len(data) < size
        cut = data.rfind(b"\n") + 1
        while not cut and not eof:      # a line longer than a block: read on to its end
            more = os.pread(fd, size, at + len(data))
            eof = len(more) < size
            data += more
            cut = data.rfind(b"\n") + 1
        if eof:
            if data:
                yield data if data.endswith(b"\n") else data + b"\n"
            return
        yield data
        at += cut


def block_lines(block: bytes, *, ascii: bool | None = None) -> pl.LazyFrame:
    """The lines of a line_blocks() block as a lazy frame (column raw).

    An all-ASCII block (the usual log; `ascii` when the caller knows) is split by polars' line
    reader. Any other block goes through the CSV reader, whose lossy decoding replaces invalid
    UTF-8 (the line reader refuses the whole block), with \\x1f (unit separator) as the "column
    separator" that keeps each line whole; a block that holds one is split by lines_from_bytes()
    instead. Bytes after the last "\\n" are not read: they begin the next block.
    """
    end = block.rfind(b"\n") + 1
    if end < len(block):
        block = block[:end]     # a copy, but cheaper than counting lines to stop the reader
    if block.isascii() if ascii is None else ascii:
        return pl.scan_lines(block, name="raw")
    if b"\x1f" in block:
        return pl.DataFrame({"raw": lines_from_bytes(block)}).lazy()
    return pl.scan_csv(block, has_header=False, separator="\x1f", quote_char=None, new_columns=["raw"],
                       encoding="utf8-lossy", infer_schema=False, comment_prefix=None, eol_char="\n",
                       raise_if_empty=False, empty_string_is_null=False)


def cut_line(line: str) -> str:
    """A line cut to MAX_LINE_BYTES (UTF-8), as read_chunks() cuts an oversized line."""
    return _cut_utf8(line.encode("utf-8")[:MAX_LINE_BYTES]).decode("utf-8", "replace")


def _cut_utf8(data: bytes) -> bytes:
    """Cut `data` so it does not end inside a multi-byte UTF-8 sequence."""
    end = len(data)
    for back in range(1, 4):
        if end - back < 0:
            break
        b = data[end - back]
        if b & 0xC0 == 0x80:
            continue
        if b & 0x80:
            return data[:end - back]
        break
    return data


def lines_from_bytes(block: bytes) -> pl.Series:
    """Split a block of complete lines into a String Series (invalid UTF-8 replaced, CR removed)."""
    if not block:
        return pl.Series("raw", [], dtype=pl.String)
    if b"\x1f" not in block:
        # polars' CSV reader splits lines in native code, many times faster than str.split;
        # \x1f (unit separator) as the "column separator" keeps each line whole.
        try:
            df = pl.read_csv(io.BytesIO(block), has_header=False, separator="\x1f", quote_char=None,
                             new_columns=["raw"], encoding="utf8-lossy", infer_schema=False,
                             comment_prefix=None, eol_char="\n", raise_if_empty=False)
            series = df.get_column("raw").fill_null("")
            if len(series) == block.count(b"\n"):
                return series
        except Exception:  # noqa: BLE001 - any reader quirk falls back to the exact, slower split
            pass
    text = block.decode("utf-8", "replace")
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return pl.Series("raw", [p.removesuffix("\r") for p in parts], dtype=pl.String)


"""JSON Lines files as ready binary COPY data, line-aligned chunk by chunk, in workers if large."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

from psycopg import postgres, pq
from psycopg._copy_base import format_row_binary
from psycopg.adapt import AdaptersMap, Transformer
from psycopg.types.string import BytesBinaryDumper

from journeyflow.readers import (
    NUL_ESCAPE,
    GoodRow,
    JsonLines,
    RejectedRow,
    SourceFileError,
    may_hold_blank,
    rfc3339_timestamps_agree,
)
from journeyflow.sources import SourceSpec

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # header, flags, no header extension
COPY_TRAILER = b"\xff\xff"
CHUNK_BYTES = 1 << 20  # larger chunks leave the allocator's heap more fragmented
PARALLEL_MIN_BYTES = 32 << 20  # smaller files are encoded in-process: workers cost a start-up
# Per-row load columns first, the batch's constants last; the record goes in as binary jsonb
# (a version byte, then the text), dumped as bytes so that it is copied as it is.
ROW_COLUMNS = [("_line_number", "integer"), ("_record", "bytea")]
CONSTANT_COLUMNS = [
    ("_batch_id", "text"),
    ("_source", "text"),
    ("_source_file", "text"),
    ("_loaded_at", "timestamptz"),
]


class Chunk(NamedTuple):
    """A byte range of a file that starts at a line start; `first_line` is that line's number."""

    start: int
    end: int
    first_line: int


class EncodedChunk(NamedTuple):
    """A chunk's good rows as binary COPY tuples, its rejects, and what parsed in it."""

    data: bytes
    loaded: int
    rejects: list[RejectedRow]
    parsed_any: int
    unparseable: int


def copy_columns(spec: SourceSpec) -> list[str]:
    """The raw table's columns in the order the encoded rows hold them."""
    return spec.column_names + [name for name, _ in ROW_COLUMNS + CONSTANT_COLUMNS]


def default_workers() -> int:
    """Encoding worker processes: one per core but one, which the PostgreSQL backend needs.

    None (0) where that leaves a single worker: one spawned process does no more than a thread
    of the loading process, and costs a start-up and a transfer of every chunk's bytes.
    """
    workers = min((os.cpu_count() or 1) - 1, 8)
    return workers if workers >= 2 else 0


def _line_breaks(data: bytes, end: int) -> int:
    """Lines ended in data[:end]: by \\n, \\r\\n or a lone \\r, as Python's universal newlines."""
    breaks = data.count(b"\n", 0, end)
    if data.find(b"\r", 0, end) >= 0:
        breaks += data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)
    return breaks


def plan_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Cut a file into chunks of about `chunk_bytes` that end right after a newline."""
    with open(path, "rb") as handle:
        start, line, pending = 0, 1, b""
        while block := handle.read(chunk_bytes):
            data = pending + block if pending else block
            cut = data.rfind(b"\n") + 1
            if cut:
                yield Chunk(start, start + cut, line)
                line += _line_breaks(data, cut)
                start += cut
            pending = data[cut:]
        if pending:
            yield Chunk(start, start + len(pending), line)


class _BytesAsTheyAre:
    """A dumping context whose bytea dumper is psycopg's C one.

    The default adapters map bytea to the DB-API `Binary` dumper, a Python subclass called
    once per row for the record (about 0.2 us a row).
    """

    connection = None

    def __init__(self) -> None:
        self.adapters = AdaptersMap(postgres.adapters)
        self.adapters.register_dumper(None, BytesBinaryDumper)  # by oid; registered as its C twin


class ChunkEncoder:
    """Types the lines of chunks and formats good rows as binary COPY tuples of one batch."""

    def __init__(self, spec: SourceSpec, batch_constants: tuple) -> None:
        self.spec = spec
        self.constants = batch_constants  # batch id, source, file, loaded at
        self.has_timestamps = any(column.type == "timestamp" for column in spec.columns)
        self.lines = JsonLines(spec, utf8=True)  # its decoders, built once
        types = [column.sql_type for column in spec.columns]
        types += [sql_type for _, sql_type in ROW_COLUMNS + CONSTANT_COLUMNS]
        self.transformer = Transformer(_BytesAsTheyAre())
        self.transformer.set_dumper_types(
            [postgres.types[name].oid for name in types], pq.Format.BINARY
        )

    def encode(self, path: Path, chunk: Chunk) -> EncodedChunk:
        """Read, check, type and format one chunk; SourceFileError if it is not UTF-8."""
        with open(path, "rb") as handle:
            handle.seek(chunk.start)
            data = handle.read(chunk.end - chunk.start)
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise SourceFileError(f"{path}: expected JSON Lines in UTF-8: {error}") from error
        lines = self.lines
        lines.parsed_any = lines.unparseable = 0  # counted per chunk
        out, rejects = bytearray(), []
        fast_rows, loaded = self._encode_lines(data, chunk.first_line, lines, out, rejects)
        parsed_any = lines.parsed_any + fast_rows
        return EncodedChunk(out, loaded, rejects, parsed_any, lines.unparseable)

    def _encode_lines(self, data: bytes, first_line: int, lines: JsonLines, out, rejects):
        """The hot loop: format each good row into `out`; (rows by the fast path, rows in all).

        What can be ruled out for the whole chunk in one scan (blank strings, \\u0000, timestamps
        the decoder would read otherwise than the general rules) is not looked for line by line.
        """
        fast, general_row, tx = lines.fast, lines.general_row, self.transformer
        constants, nul_escape = self.constants, NUL_ESCAPE.encode()
        check_blanks = may_hold_blank(data)
        check_nul = b"\\" in data and nul_escape in data
        typed = self.has_timestamps and rfc3339_timestamps_agree(data)
        fast_rows = general_rows = 0
        for number, line in enumerate(data.splitlines(), first_line):
            values = fast(line, check_blanks, typed)
            if values is not None and not (check_nul and nul_escape in line):
                format_row_binary((*values, number, b"\x01" + line, *constants), tx, out)
                fast_rows += 1
                continue
            row = general_row(number, line.decode())
            if type(row) is GoodRow:
                record = b"\x01" + row.record_json.encode()
                format_row_binary((*row.values, number, record, *constants), tx, out)
                general_rows += 1
            elif row is not None:
                rejects.append(row)
        return fast_rows, fast_rows + general_rows


_worker_encoder: ChunkEncoder | None = None


def _start_worker(spec: SourceSpec, batch_constants: tuple) -> None:
    global _worker_encoder
    _worker_encoder = ChunkEncoder(spec, batch_constants)


def _encode_in_worker(path: str, chunk: Chunk) -> EncodedChunk:
    return _worker_encoder.encode(Path(path), chunk)


def encoded_chunks(
    path: Path,
    spec: SourceSpec,
    batch_constants: tuple,
    chunk_bytes: int = CHUNK_BYTES,
    workers: int | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
) -> Iterator[EncodedChunk]:
    """A file's encoded chunks in file order: by worker processes for large files on machines
    with cores to spare, else by a thread of this process.

    At most two chunks per encoder are in flight, so memory stays flat however large the file.
    An encoder's error is raised here.
    """
    workers = default_workers() if workers is None else workers
    chunks = plan_chunks(path, chunk_bytes)
    if workers < 1 or path.stat().st_size < parallel_min_bytes or not _may_start_processes():
        yield from _encode_in_thread(ChunkEncoder(spec, batch_constants), path, chunks)
        return
    yield from _encode_in_workers(path, spec, batch_constants, chunks, workers)


def _encode_in_thread(encoder: ChunkEncoder, path: Path, chunks) -> Iterator[EncodedChunk]:
    """Chunks encoded by a thread of this process, at most two ahead of the caller.

    While the caller's COPY waits for the server to take the previous chunk (the GIL
    released), the thread encodes the next one: no start-up and no transfer between processes.
    """
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def hand_over(item: tuple) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def encode_all() -> None:
        try:
            for chunk in chunks:
                if not hand_over((encoder.encode(path, chunk), None)):
                    return
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            hand_over((None, error))
            return
        hand_over((None, None))

    thread = threading.Thread(target=encode_all, name="jsonl-encoder", daemon=True)
    thread.start()
    try:
        while True:
            encoded, error = ready.get()
            if error is not None:
                raise error
            if encoded is None:
                return
            yield encoded
    finally:
        stop.set()
        thread.join()


def _may_start_processes() -> bool:
    """A daemonic process (a Celery prefork child, say) may not start processes of its own."""
    return not multiprocessing.current_process().daemon


def _encode_in_workers(path, spec, batch_constants, chunks, workers) -> Iterator[EncodedChunk]:
    """Chunks encoded by a pool of spawned processes (no copy of the caller's connections)."""
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(spec, batch_constants),
    )
    pending: deque = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(_encode_in_worker, str(path), chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

"""JSON Lines files cut into line-aligned chunks keep the line numbers of a line-by-line read."""

from __future__ import annotations

import pytest

from journeyflow.jsonl_copy import Chunk, plan_chunks


def _lines_by_chunk(path, chunk_bytes):
    """(first line number, the chunk's lines) for every planned chunk."""
    data = path.read_bytes()
    return [
        (chunk.first_line, data[chunk.start : chunk.end].splitlines())
        for chunk in plan_chunks(path, chunk_bytes)
    ]


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 16, 1 << 20])
def test_chunks_cover_the_file_at_line_starts_with_universal_newline_numbers(tmp_path, chunk_bytes):
    text = 'a1\r\nb2\rc3\n\n{"d": 4}\r\rlong line ' + "x" * 40 + "\nlast, no newline"
    path = tmp_path / "events.jsonl"
    path.write_bytes(text.encode())
    with open(path, encoding="utf-8", newline="") as handle:
        expected = [line.rstrip("\r\n").encode() for line in handle]

    chunks = list(plan_chunks(path, chunk_bytes))
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:], strict=False))
    numbered = {}
    for first_line, lines in _lines_by_chunk(path, chunk_bytes):
        numbered.update(enumerate(lines, first_line))
    assert numbered == dict(enumerate(expected, 1))


def test_a_chunk_ends_after_a_newline_even_when_a_line_is_longer_than_the_chunk(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"short\n" + b"y" * 50 + b"\nend\n")
    assert list(plan_chunks(path, 8)) == [Chunk(0, 6, 1), Chunk(6, 61, 2)]


def test_an_empty_file_has_no_chunks(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert list(plan_chunks(path)) == []

"""Lines in and out, and every daemon message decoded or refused with a reason."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from villas_kind import State
from villas_kind.wire import (
    MAX_LINE,
    TOO_LONG,
    Act,
    Build,
    Hello,
    LineReader,
    LineWriter,
    ProtocolError,
    Reply,
    TooLong,
    decode,
    encode,
)


def read_all(chunks: list[bytes], limit: int = 16) -> list[bytes | TooLong]:
    async def main() -> list[bytes | TooLong]:
        stream = asyncio.StreamReader()
        for chunk in chunks:
            stream.feed_data(chunk)
        stream.feed_eof()
        lines = LineReader(stream, limit)
        out: list[bytes | TooLong] = []
        while (line := await lines.read_line()) is not None:
            out.append(line)
        return out

    return asyncio.run(main())


def test_lines_across_chunks() -> None:
    assert read_all([b"ab", b"c\nde", b"f\n\ng"]) == [b"abc", b"def", b"", b"g"]


def test_a_line_over_the_limit_is_skipped_and_reported_once() -> None:
    # Over the limit within one chunk, and over it across several chunks.
    assert read_all([b"x" * 40 + b"\nok\n"]) == [TOO_LONG, b"ok"]
    assert read_all([b"y" * 10, b"y" * 10, b"y" * 10, b"y\nafter\n"]) == [TOO_LONG, b"after"]
    assert read_all([b"z" * 16 + b"\n"]) == [b"z" * 16], "the limit itself is allowed"


def test_writer_reports_the_other_end_gone() -> None:
    read_end, write_end = os.pipe()
    closed: list[bool] = []
    writer = LineWriter(write_end, on_closed=lambda: closed.append(True))
    assert writer.send({"event": "publish", "instance": "a"})
    assert os.read(read_end, 100) == b'{"event":"publish","instance":"a"}\n'
    os.close(read_end)
    assert not writer.send({"event": "publish", "instance": "a"})
    assert not writer.send({"event": "publish", "instance": "a"})
    assert closed == [True], "told once"
    os.close(write_end)


def test_writer_refuses_what_is_not_json() -> None:
    read_end, write_end = os.pipe()
    writer = LineWriter(write_end)
    assert not writer.send({"fields": {"x": float("nan")}})
    assert not writer.send({"fields": {"x": {1, 2}}})
    assert writer.send({"ok": True})
    assert os.read(read_end, 100) == b'{"ok":true}\n', "nothing half-written before"
    os.close(read_end)
    os.close(write_end)


def test_writer_refuses_a_line_the_daemon_would_refuse(tmp_path: Path) -> None:
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)  # a file: a write never blocks
    writer = LineWriter(out)
    assert not writer.send({"fields": {"x": "y" * MAX_LINE}})
    assert writer.send({"fields": {"x": "y" * (MAX_LINE - 20)}}), "up to the limit is fine"
    assert writer.send({"ok": True})
    os.close(out)
    lines = (tmp_path / "out").read_bytes().splitlines()
    assert [len(line) for line in lines] == [MAX_LINE - 1, 11]


def test_encode_is_compact_utf8() -> None:
    assert encode({"name": "Zürich", "n": [1, 2]}) == '{"name":"Zürich","n":[1,2]}'.encode()


def test_decode_each_message() -> None:
    assert decode(b'{"op":"hello","id":0,"protocol":1,"daemon":"0.1.0","sdk":"0.1.0"}') == Hello(
        0, 1, "0.1.0", "0.1.0"
    )
    build = decode(
        b'{"op":"build","id":1,"instance":"u","category":"simulator","type":"probe",'
        b'"properties":{"name":"n"},"data_dir":"/tmp/d"}'
    )
    assert build == Build(1, "u", "simulator", "probe", {"name": "n"}, Path("/tmp/d"))
    assert isinstance(decode(b'{"op":"build","id":1,"instance":"u","category":"c","type":"t","properties":{}}'), Build)
    act = decode(b'{"op":"act","id":2,"instance":"u","state":"starting","action":{"action":"start","model":{"url":"x"}}}')
    assert isinstance(act, Act)
    assert act.state is State.STARTING
    assert (act.action.name, act.action.parameters, act.action.model) == ("start", {}, {"url": "x"})
    assert decode(b'{"reply":3,"ok":false,"error":{"message":"no"}}') == Reply(3, False, {"message": "no"})


@pytest.mark.parametrize(
    ("line", "problem", "request_id"),
    [
        (b"not json", "not JSON", None),
        (b"\xff\xfe", "not JSON", None),
        (b"[1,2]", "not a JSON object but an array", None),
        (b'{"op":"ping","id":1,"x":NaN}', "not JSON", None),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON", None),
        (b'{"id":4}', "neither a request (op) nor a reply", 4),
        (b'{"op":"dance","id":5}', "unknown op 'dance'", 5),
        (b'{"op":"ping","id":"6"}', "field 'id' must be an integer >= 0, not a string", None),
        (b'{"op":"ping","id":-1}', "field 'id' must be an integer >= 0", None),
        (b'{"op":"ping","id":true}', "field 'id' must be an integer >= 0, not a boolean", None),
        (b'{"op":"remove","id":8}', "remove: field 'instance' is missing", 8),
        (b'{"op":"build","id":9,"instance":"u","category":"c","type":"t","properties":[]}', "must be an object", 9),
        (b'{"op":"act","id":10,"instance":"u","state":"sleeping","action":{"action":"start"}}', "unknown state 'sleeping'", 10),
        (b'{"op":"act","id":12,"instance":"u","state":"idle","action":{"parameters":{}}}', "field 'action' is missing", 12),
        (b'{"reply":1,"ok":"yes"}', "field 'ok' must be a boolean", None),
    ],
)
def test_decode_refuses(line: bytes, problem: str, request_id: int | None) -> None:
    with pytest.raises(ProtocolError) as refused:
        decode(line)
    assert problem in refused.value.message
    assert refused.value.request_id == request_id
    assert refused.value.to_json()["code"] == 2


@pytest.mark.parametrize(
    "line",
    [
        b'{"op":"ping","id":7,"extra":1}',
        b'{"op":"act","id":11,"instance":"u","state":"idle","action":{"action":"start","when":1}}',
        b'{"reply":1,"ok":true,"id":3}',
    ],
)
def test_decode_ignores_unknown_fields(line: bytes) -> None:
    """A newer daemon may add fields: an older kind carries the message out."""
    message = decode(line)
    assert type(message).__name__ in ("Ping", "Act", "Reply")

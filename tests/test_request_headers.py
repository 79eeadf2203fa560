"""The server reads a request's header block more strictly than pywsgi, and no further than the block.

It refuses (a 400 or 431 from the server) a block over MAX_BLOCK bytes, any line
that is not `Name: value` (folding, no name, white space in a name, a bare CR, a
NUL), and a block cut short by the end of input. The lines it accepts are parsed
as pywsgi parses them (tests/test_fastpaths.py).
"""
from __future__ import annotations

import io
import re
from http.client import HTTPException

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todopy import request_headers

BODY = b"rest of the stream\r\n"
PLAIN = re.compile(rb"[!-9;-~]+:[^\r\n\x00]*\r?\n")


def refusal(block: bytes) -> type | None:
    """What the server must refuse `block` (followed by BODY) with, told without it; None: accepted."""
    stream = io.BytesIO(block + BODY)
    size = 0
    while True:
        line = stream.readline()
        size += len(line)
        if size > request_headers.MAX_BLOCK:
            return request_headers.HeaderBlockTooLarge
        if line in (b"\r\n", b"\n"):
            return None
        if not line or not PLAIN.fullmatch(line):
            return request_headers.MalformedHeader


def check(block: bytes) -> None:
    """Refused as it must be, or read as its lines, leaving the stream at the body."""
    stream = io.BytesIO(block + BODY)
    refused = refusal(block)
    try:
        lines = request_headers.read_block(stream)
    except HTTPException as error:
        assert refused is not None and type(error) is refused, (block[:200], error)
        return
    assert refused is None, block[:200]
    read = "".join(lines).encode("iso-8859-1")
    assert block.startswith(read) and [line in ("\r\n", "\n") for line in lines] == [False] * (len(lines) - 1) + [True]
    assert stream.read() == block[len(read):] + BODY     # the block's end, and not a byte further


CASES = [
    b"\r\n",
    b"\n",
    b"",
    b"Host: example.com\r\n\r\n",
    b"host:127.0.0.1\nconnection:keep-alive\n\n",
    b"Folded: one\r\n  two\r\n\tthree\r\n\r\n",
    b" Leading-space: x\r\n\r\n",
    b": no name\r\nHost: x\r\n\r\n",
    b"No colon here\r\nHost: x\r\n\r\n",
    b"Bad Name: x\r\nHost: x\r\n\r\n",
    b"From nobody Mon Jan  1 00:00:00 2024\r\nHost: x\r\n\r\n",
    b"Host: x\r\nFrom someone\r\n\r\n",
    b"Stray: a\rInjected: b\r\n\r\n",
    b"Nul: a\x00b\r\n\r\n",
    b"Latin: caf\xe9\r\n\xe9t\xe9: x\r\n\r\n",
    b"Host: x\r\nNo-end-of-block: y\r\n",
    b"Host: x\r\n" + b"A: " + b"b" * 70000 + b"\r\n\r\n",
    b"".join(b"H%d: v\r\n" % i for i in range(99)) + b"\r\n",
]


@pytest.mark.parametrize("block", CASES)
def test_known_blocks_are_read_or_refused(block):
    check(block)


def test_more_than_a_hundred_lines_are_refused_as_http_client_refuses_them():
    with pytest.raises(HTTPException, match="more than 100 headers"):
        request_headers.read_block(io.BytesIO(b"".join(b"H%d: v\r\n" % i for i in range(100)) + b"\r\n"))


def test_the_whole_block_is_capped_not_only_each_line():
    near = b"".join(b"H%d: %s\r\n" % (i, b"v" * 300) for i in range(99)) + b"\r\n"     # ~31 KB: accepted
    assert refusal(near) is None
    check(near)
    over = b"".join(b"H%d: %s\r\n" % (i, b"v" * 400) for i in range(99)) + b"\r\n"     # ~41 KB
    with pytest.raises(request_headers.HeaderBlockTooLarge):
        request_headers.read_block(io.BytesIO(over))
    # Never reads past the cap, however long the line it is in.
    stream = io.BytesIO(b"A: " + b"b" * 10_000_000 + b"\r\n\r\n")
    with pytest.raises(request_headers.HeaderBlockTooLarge):
        request_headers.read_block(stream)
    assert stream.tell() <= request_headers.MAX_BLOCK + 1


# Lines built of the pieces that matter: names, colons, white space, line breaks
# (CR alone too), bytes outside ASCII, NUL, "From " lines.
PIECE = st.sampled_from(list("Aaz09-_:;. \t\r\x00\x7f\xe9!~") + ["From ", "\r\n", "\n", "Content-Type:",
                                                                   " multipart/x", "Host: h"])
LINE_TEXT = st.lists(PIECE, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(LINE_TEXT, max_size=8), st.sampled_from(["\r\n", "\n", ""]))
def test_any_block_is_read_or_refused(lines, end):
    check(("".join(line + "\r\n" for line in lines) + end).encode("iso-8859-1"))

"""The server's header parser gives what pywsgi's own (http.client + email) gives, for every block it accepts.

It refuses more than pywsgi (a 400 or 431 from the server): a block over
MAX_BLOCK bytes, and any line that is not `Name: value` (folding, no name, white
space in a name, a bare CR, a NUL), or a block cut short by the end of input.
"""
from __future__ import annotations

import io
import re
from http.client import HTTPException

import pytest
from gevent.pywsgi import headers_factory
from hypothesis import given, settings
from hypothesis import strategies as st

from todopy import request_headers

BODY = b"rest of the stream\r\n"


def state(message) -> dict:
    """A message's attributes, defects by type, nested messages (message/* bodies) alike."""
    result = {key: value for key, value in vars(message).items() if key != "defects"}
    if isinstance(result.get("_payload"), list):
        result["_payload"] = [state(part) for part in result["_payload"]]
    result["defects"] = [type(defect) for defect in message.defects]
    return result


PLAIN = re.compile(rb"[!-9;-~]+:[^\r\n\x00]*\r?\n")


def refusal(block: bytes) -> type | None:
    """What our parser must refuse `block` (followed by BODY) with, told without it; None: accepted."""
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


def both(block: bytes) -> tuple:
    """(result, bytes left) of pywsgi's parser and of ours, each an exception's repr if it raised."""
    results = []
    for parse in (headers_factory, request_headers.parse):
        stream = io.BytesIO(block + BODY)
        try:
            message = parse(stream)
        except HTTPException as error:
            results.append(repr(error))
            continue
        results.append((state(message), list(message.headers),
                        message.get("content-length"), message.typeheader, stream.read()))
    return tuple(results)


def check(block: bytes) -> None:
    """Ours refuses what it must refuse, and gives pywsgi's result for every other block."""
    pywsgi, ours = both(block)
    refused = refusal(block)
    if refused is not None:
        assert isinstance(ours, str) and ours.startswith(refused.__name__ + "("), (block[:200], ours)
    else:
        assert ours == pywsgi


CASES = [
    b"\r\n",
    b"\n",
    b"",
    b"Host: example.com\r\n\r\n",
    b"Host: example.com\r\nAuthorization: Bearer abc.def-ghi\r\nContent-Length: 12\r\n\r\n",
    b"host:127.0.0.1\nconnection:keep-alive\n\n",
    b"X-Trailing:  value with spaces  \t \r\n\r\n",
    b"Empty:\r\nAlso-Empty: \r\n\r\n",
    b"Dup: 1\r\nDUP: 2\r\ndup: 3\r\n\r\n",
    b"Folded: one\r\n  two\r\n\tthree\r\n\r\n",
    b" Leading-space: x\r\n\r\n",
    b": no name\r\nHost: x\r\n\r\n",
    b"No colon here\r\nHost: x\r\n\r\n",
    b"Bad Name: x\r\nHost: x\r\n\r\n",
    b"From nobody Mon Jan  1 00:00:00 2024\r\nHost: x\r\n\r\n",
    b"Host: x\r\nFrom someone\r\n\r\n",
    b"From: someone@example.com\r\n\r\n",
    b"Stray: a\rInjected: b\r\n\r\n",
    b"Latin: caf\xe9\r\n\xe9t\xe9: x\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Host: x\r\nNo-end-of-block: y\r\n",
    b"Host: x\r\n" + b"A: " + b"b" * 70000 + b"\r\n\r\n",
    b"".join(b"H%d: v\r\n" % i for i in range(100)) + b"\r\n",
    b"".join(b"H%d: v\r\n" % i for i in range(99)) + b"\r\n",
]


@pytest.mark.parametrize("block", CASES)
def test_known_blocks_parse_alike_or_are_refused(block):
    check(block)


def test_the_whole_block_is_capped_not_only_each_line():
    near = b"".join(b"H%d: %s\r\n" % (i, b"v" * 300) for i in range(99)) + b"\r\n"     # ~31 KB: accepted
    assert refusal(near) is None
    check(near)
    over = b"".join(b"H%d: %s\r\n" % (i, b"v" * 400) for i in range(99)) + b"\r\n"     # ~41 KB
    with pytest.raises(request_headers.HeaderBlockTooLarge):
        request_headers.parse(io.BytesIO(over))
    # Never reads past the cap, however long the line it is in.
    stream = io.BytesIO(b"A: " + b"b" * 10_000_000 + b"\r\n\r\n")
    with pytest.raises(request_headers.HeaderBlockTooLarge):
        request_headers.parse(stream)
    assert stream.tell() <= request_headers.MAX_BLOCK + 1


# Lines built of the pieces that matter to the email parser: names, colons, white space,
# line breaks (CR alone too), bytes outside ASCII, "From " lines, a Content-Type.
PIECE = st.sampled_from(list("Aaz09-_:;. \t\r\x00\x7f\xe9!~") + ["From ", "\r\n", "\n", "Content-Type:",
                                                                   " multipart/x", "Host: h"])
LINE_TEXT = st.lists(PIECE, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(LINE_TEXT, max_size=8), st.sampled_from(["\r\n", "\n", ""]))
def test_any_block_parses_alike_or_is_refused(lines, end):
    check(("".join(line + "\r\n" for line in lines) + end).encode("iso-8859-1"))

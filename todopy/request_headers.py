"""Request headers as pywsgi parses them (http.client into an email Message), faster for plain lines.

pywsgi hands the header block to the email package's feed parser, three times
the cost of splitting the lines (some 10 µs a request). Lines of the plain form
`Name: value` are split here the way that parser splits them; a block with any
other line (a continuation, a line without a name, a stray CR) goes to the email
parser as before, so the result is the same Message either way
(tests/test_request_headers.py compares the two).
"""
from __future__ import annotations

import email.parser
import re
from http.client import HTTPException, LineTooLong
from typing import BinaryIO

from gevent.pywsgi import OldMessage

MAX_LINE = 65536          # http.client's limits, checked as it checks them
MAX_HEADERS = 100
END = (b"\r\n", b"\n", b"")
# One whole header line to the email parser: a name of printable ASCII but ':',
# then the value, with no line break (CR or LF) before the line's end.
PLAIN_LINE = re.compile(r"[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n")


def read_lines(fp: BinaryIO) -> list[bytes]:
    """http.client's reading of the block: lines up to and including the empty one (or EOF)."""
    lines = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in END:
            return lines


def parse(fp: BinaryIO) -> OldMessage:
    """What pywsgi's `headers_factory` returns for the header block at `fp`."""
    try:
        lines = read_lines(fp)
    except LineTooLong:
        message = OldMessage()
        message.status = "Line too long"
        return message
    text = [line.decode("iso-8859-1") for line in lines]
    if lines[-1] and all(PLAIN_LINE.fullmatch(line) for line in text[:-1]):
        message = OldMessage()
        for line in text[:-1]:
            name, _, value = line.partition(":")
            message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
        message.set_payload("")
        # The email parser reads on into a multipart or message/* body; leave those to it.
        if message.get_content_maintype() not in ("multipart", "message"):
            return message
    return email.parser.Parser(_class=OldMessage).parsestr("".join(text))

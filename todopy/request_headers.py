"""Request headers as pywsgi parses them (http.client into an email Message), faster and stricter.

Replaces pywsgi's `headers_factory`. pywsgi hands the header block to the email
package's feed parser, three times the cost of splitting the lines (some 10 µs a
request). Lines of the plain form `Name: value` are split here the way that
parser splits them, so the result is the same Message
(tests/test_request_headers.py compares the two on generated blocks).

Stricter than pywsgi, as RFC 9112 asks of a server that may sit behind a proxy:
- the whole block is capped (MAX_BLOCK), not only each line: a hundred lines of
  64 KiB each per connection let a few hundred connections take gigabytes;
- any other line (obsolete folding, a line without a name, white space in a name,
  a stray CR, a NUL) is refused instead of handed to the email parser, which
  would fold it, or silently drop every header after it (a proxy in front may
  read those headers, e.g. a Content-Length, differently: request smuggling).
"""
from __future__ import annotations

import email.parser
import re
from http.client import HTTPException
from typing import BinaryIO

from gevent.pywsgi import OldMessage

MAX_HEADERS = 100         # http.client's limit, checked as it checks it
MAX_BLOCK = 32 * 1024     # the whole header block, below http.client's 64 KiB per line (nginx: 4 x 8 KiB)
END = (b"\r\n", b"\n", b"")
# One whole header line: a name of printable ASCII but ':', then the value, with
# no line break (CR or LF) or NUL before the line's end.
PLAIN_LINE = re.compile(r"[\x21-\x39\x3b-\x7e]+:[^\r\n\x00]*\r?\n")


class HeaderBlockTooLarge(HTTPException):
    """The header block is over MAX_BLOCK bytes (a 431)."""


class MalformedHeader(HTTPException):
    """A header line that is not `Name: value` (a 400); the message says which kind."""


def read_lines(fp: BinaryIO, max_block: int = MAX_BLOCK) -> list[bytes]:
    """http.client's reading of the block: lines up to and including the empty one (or EOF).

    Never reads more than `max_block` bytes in all (HeaderBlockTooLarge past it).
    """
    lines = []
    left = max_block
    while True:
        # The block's cap is below http.client's line limit: one check covers both.
        line = fp.readline(left + 1)
        if len(line) > left:
            raise HeaderBlockTooLarge(f"the request's header block is over {max_block // 1024} KiB")
        left -= len(line)
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in END:
            return lines


def parse(fp: BinaryIO) -> OldMessage:
    """What pywsgi's `headers_factory` returns for the header block at `fp`, for the blocks we accept.

    Raises HeaderBlockTooLarge or MalformedHeader for the blocks we refuse.
    """
    lines = read_lines(fp)
    text = [line.decode("iso-8859-1") for line in lines]
    if not lines[-1]:
        raise MalformedHeader("the request's header block ended early")
    for line in text[:-1]:
        if not PLAIN_LINE.fullmatch(line):
            raise MalformedHeader(_what_is_wrong(line))
    message = OldMessage()
    for line in text[:-1]:
        name, _, value = line.partition(":")
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    message.set_payload("")
    # The email parser reads on into a multipart or message/* body; leave those to it.
    if message.get_content_maintype() not in ("multipart", "message"):
        return message
    return email.parser.Parser(_class=OldMessage).parsestr("".join(text))


def _what_is_wrong(line: str) -> str:
    if line[:1] in (" ", "\t"):
        return "obsolete header line folding is not accepted (RFC 9112 section 5.2)"
    if "\x00" in line:
        return "a header contains a NUL character"
    name, colon, _ = line.partition(":")
    if not colon or not name:
        return "a header line has no name"
    if "\r" in line.rstrip("\r\n"):
        return "a header line contains a bare CR"
    return "a header name contains white space or a character not allowed there"

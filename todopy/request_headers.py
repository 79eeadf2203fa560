"""The request's header block, read as strictly as RFC 9112 asks of a server that may sit behind a proxy.

pywsgi reads it with http.client, which caps each line (64 KiB) and the number of
lines (100) only, and hands every line to the email package, which folds
continuation lines and silently drops every header after a line it cannot read.
Here, before the block is parsed (todopy.fastpaths.headers_message):
- the whole block is capped (MAX_BLOCK), not only each line: a hundred lines of
  64 KiB each per connection let a few hundred connections take gigabytes;
- any line that is not `Name: value` (obsolete folding, a line without a name,
  white space in a name, a stray CR, a NUL) is refused: a proxy in front may read
  such a block differently (e.g. its Content-Length), which is request smuggling.
"""
from __future__ import annotations

import re
from http.client import HTTPException
from typing import BinaryIO

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


def read_block(fp: BinaryIO) -> list[str]:
    """The header block at `fp` as latin-1 text lines, the empty line that ends it last.

    Raises HeaderBlockTooLarge or MalformedHeader for the blocks we refuse.
    """
    lines = read_lines(fp)
    if not lines[-1]:
        raise MalformedHeader("the request's header block ended early")
    text = [line.decode("iso-8859-1") for line in lines]
    for line in text[:-1]:
        if not PLAIN_LINE.fullmatch(line):
            raise MalformedHeader(_what_is_wrong(line))
    return text


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

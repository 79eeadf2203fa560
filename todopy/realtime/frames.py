"""The WebSocket frame codec (RFC 6455 sections 5 and 7), without I/O.

`encode_frame` writes the frames a server sends (final, unmasked). `FrameReader`
reads a client's, as strict as a server must be: tests/unit/realtime/test_frames.py
holds it to wsproto's verdicts on generated frames. wsproto itself would buffer every
client message; clients have little to tell this server (a presence frame), so the
reader checks data frames (framing, UTF-8 of text) and keeps only short text messages.
"""
from __future__ import annotations

import codecs
import enum
import struct

MAX_CLIENT_FRAME = 64 * 1024     # clients have little to tell us; refuse to buffer more
MAX_TEXT = 1024                  # characters: a longer text message is checked, not handed on


class Opcode(enum.IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})


class Violation(enum.IntEnum):
    """The close codes a reader answers a peer's broken input with."""

    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007          # text that is not UTF-8
    TOO_BIG = 1009


# Close codes a peer may send (RFC 6455 section 7.4 and IANA's registry): 1004-1006 and
# 1015 are reserved or local-only, 1016-2999 unassigned, 3000-4999 for applications.
VALID_PEER_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013}) | \
    frozenset(range(3000, 5000))


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame, as a server sends it."""
    length = len(payload)
    if length < 126:
        return bytes((0x80 | opcode, length)) + payload
    if length <= 0xFFFF:
        return struct.pack("!BBH", 0x80 | opcode, 126, length) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, length) + payload


def text_frame(payload: bytes) -> bytes:
    return encode_frame(Opcode.TEXT, payload)


def close_frame(code: int | None, reason: str) -> bytes:
    """A close frame with `code` (None: no code) and as much of `reason` as fits."""
    payload = b"" if code is None else struct.pack("!H", code) + _truncate(reason, 123)
    return encode_frame(Opcode.CLOSE, payload)


def _truncate(text: str, limit: int) -> bytes:
    """`text` in UTF-8, cut to at most `limit` bytes without splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if not mask:
        return payload
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[:len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


class FrameReader:
    """A client's frames in, what they call for out (RFC 6455 sections 5 and 7), without I/O.

    `feed(data)` returns the control frames that completed, as (opcode, payload)
    pairs for pings and pongs; data frames are checked (framing, UTF-8 of text)
    and dropped, but for text messages of at most MAX_TEXT characters, kept in
    `texts` for the reader's owner. Reading stops at the peer's close (`closed` holds its code, or
    None for a close without one, and its reason) or at the first violation
    (`failure` holds the close code and reason to answer with).
    """

    __slots__ = ("_inbox", "_message", "_utf8", "_text", "closed", "failure", "frames", "texts")

    def __init__(self) -> None:
        self._inbox = bytearray()
        self._message: int | None = None     # opcode of the fragmented message in progress
        self._utf8: codecs.IncrementalDecoder | None = None
        self._text: list[str] | None = None    # the text message in progress, while short enough to keep
        self.texts: list[str] = []             # short text messages completed, until their owner takes them
        self.closed: tuple[int | None, str] | None = None
        self.failure: tuple[int, str] | None = None
        self.frames = 0                      # complete frames read: each proves the peer alive

    @property
    def done(self) -> bool:
        return self.closed is not None or self.failure is not None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        controls: list[tuple[int, bytes]] = []
        if self.done:
            return controls
        inbox = self._inbox
        inbox += data
        while len(inbox) >= 2 and not self.done:
            first, second = inbox[0], inbox[1]
            fin, opcode, length, start = first & 0x80, first & 0x0F, second & 0x7F, 2
            if opcode not in DATA_OPCODES and opcode not in CONTROL_OPCODES:
                return self._fail(Violation.PROTOCOL_ERROR, "reserved opcode", controls)
            if opcode in CONTROL_OPCODES and (not fin or length > 125):
                return self._fail(Violation.PROTOCOL_ERROR, "control frames are single and at most 125 bytes", controls)
            if length == 126:
                if len(inbox) < 4:
                    break
                length, start = struct.unpack_from("!H", inbox, 2)[0], 4
                if length < 126:
                    return self._fail(Violation.PROTOCOL_ERROR, "payload length not in its shortest form", controls)
            elif length == 127:
                if len(inbox) < 10:
                    break
                length, start = struct.unpack_from("!Q", inbox, 2)[0], 10
                if length <= 0xFFFF or length >> 63:
                    return self._fail(Violation.PROTOCOL_ERROR, "payload length not in its shortest form", controls)
            if first & 0x70:
                return self._fail(Violation.PROTOCOL_ERROR, "no extension was negotiated: RSV bits must be 0", controls)
            if not second & 0x80:
                return self._fail(Violation.PROTOCOL_ERROR, "client frames must be masked", controls)
            if length > MAX_CLIENT_FRAME:
                return self._fail(Violation.TOO_BIG, "frames from clients are ignored; keep them small", controls)
            if len(inbox) < start + 4 + length:
                break
            mask = bytes(inbox[start:start + 4])
            # Only control frames and text (its UTF-8 is checked) need their payload unmasked.
            wanted = opcode in CONTROL_OPCODES or opcode == Opcode.TEXT or \
                (opcode == Opcode.CONTINUATION and self._utf8 is not None)
            payload = _unmask(bytes(inbox[start + 4:start + 4 + length]), mask) if wanted else b""
            del inbox[:start + 4 + length]
            self.frames += 1
            if opcode in CONTROL_OPCODES:
                if opcode == Opcode.CLOSE:
                    self._close(payload)
                else:
                    controls.append((opcode, payload))
            else:
                self._data(opcode, bool(fin), payload)
        if self.done:
            self._inbox = bytearray()
        return controls

    def _data(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == Opcode.CONTINUATION:
            if self._message is None:
                self.failure = (Violation.PROTOCOL_ERROR, "continuation frame without a message to continue")
                return
        elif self._message is not None:
            self.failure = (Violation.PROTOCOL_ERROR, "a new message began before the last one ended")
            return
        else:
            self._message = opcode
            self._utf8 = codecs.getincrementaldecoder("utf-8")() if opcode == Opcode.TEXT else None
            self._text = [] if opcode == Opcode.TEXT else None
        if self._utf8 is not None:
            try:
                text = self._utf8.decode(payload, fin)
            except UnicodeDecodeError:
                self.failure = (Violation.INVALID_DATA, "text messages must be UTF-8")
                return
            if self._text is not None:
                self._text.append(text)
                if sum(map(len, self._text)) > MAX_TEXT:
                    self._text = None
        if fin:
            if self._text is not None:
                self.texts.append("".join(self._text))
            self._message, self._utf8, self._text = None, None, None

    def _close(self, payload: bytes) -> None:
        if not payload:
            self.closed = (None, "")
        elif len(payload) == 1:
            self.failure = (Violation.PROTOCOL_ERROR, "a close frame's code takes two bytes")
        else:
            code = struct.unpack_from("!H", payload)[0]
            if code not in VALID_PEER_CODES:
                self.failure = (Violation.PROTOCOL_ERROR, "reserved or unknown close code")
                return
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self.failure = (Violation.INVALID_DATA, "close reasons must be UTF-8")
                return
            self.closed = (code, reason)

    def _fail(self, code: int, reason: str, controls: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        self.failure = (code, reason)
        self._inbox = bytearray()
        return controls

"""Client frames built by hand, broken on purpose when asked: what the codec tests send."""
from __future__ import annotations

import os
import struct

from wsproto.frame_protocol import Opcode

# The oracle's names (wsproto's), not the code under test's.
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = (Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY,
                                                    Opcode.CLOSE, Opcode.PING, Opcode.PONG)
RESERVED_OPCODES = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]
CLOSE_CODES = [0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               1015, 1016, 2000, 2999, 3000, 3999, 4000, 4008, 4999, 5000, 65535]


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True,
                 length_form: str = "shortest", mask: bytes | None = None) -> bytes:
    """One frame as a client would send it, or as a broken one would (any of its fields)."""
    length = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mask_bit = 0x80 if masked else 0
    if length_form == "16" or (length_form == "shortest" and 126 <= length <= 0xFFFF):
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    elif length_form == "64" or (length_form == "shortest" and length > 0xFFFF):
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    else:
        head += bytes([mask_bit | length])
    if not masked:
        return head + payload
    mask = mask if mask is not None else os.urandom(4)
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))

"""The UART protocol between a host and the board's shell (rtl/uart/uart_shell.sv), in one place
for the generator, the host, the simulation and the tests.

Request: one frame's input codes, `in_bytes` bytes each, little endian, the code's field
(flow.packing: two's complement, BIPOLAR 1 = +1, 0 = -1) in the low bits.
Reply: the last layer's accumulators, class 0 first, `acc_bytes` bytes each, little-endian
two's complement; then a status byte: the class (numpy's argmax of the accumulators: the
first index of the largest) in bits 6..0, bit 7 set when the request arrived damaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow.backends.rtl.top import model_streams
from flow.ir import Model
from flow.packing import encode

MAX_CLASSES = 128  # the class fits the status byte's low 7 bits
DAMAGED = 0x80


@dataclass(frozen=True)
class Reply:
    accumulators: np.ndarray  # int64 [classes]
    label: int  # the class the board computed
    damaged: bool


@dataclass(frozen=True)
class Protocol:
    features: int  # input codes per frame
    in_bits: int
    classes: int
    acc_bits: int

    @property
    def in_bytes(self) -> int:
        return (self.in_bits + 7) // 8

    @property
    def acc_bytes(self) -> int:
        return (self.acc_bits + 7) // 8

    @property
    def request_len(self) -> int:
        return self.features * self.in_bytes

    @property
    def reply_len(self) -> int:
        return self.classes * self.acc_bytes + 1

    def request(self, fields: np.ndarray) -> bytes:
        """One frame's unsigned code fields [features] -> the bytes the host sends."""
        f = np.asarray(fields, dtype=np.int64).astype("<u8")
        return b"".join(int(v).to_bytes(self.in_bytes, "little") for v in f)

    def reply(self, acc: np.ndarray, damaged: bool = False) -> bytes:
        """The bytes a correct board answers for accumulators acc [classes]."""
        body = b"".join(int(v).to_bytes(self.acc_bytes, "little", signed=True) for v in acc)
        return body + bytes([int(np.argmax(acc)) | (DAMAGED if damaged else 0)])

    def decode(self, data: bytes) -> Reply:
        if len(data) != self.reply_len:
            raise ValueError(f"a reply has {self.reply_len} bytes, got {len(data)}")
        n = self.acc_bytes
        acc = np.array([int.from_bytes(data[k * n:(k + 1) * n], "little", signed=True)
                        for k in range(self.classes)], dtype=np.int64)
        return Reply(acc, data[-1] & ~DAMAGED & 0xFF, bool(data[-1] & DAMAGED))

    def describe(self) -> dict[str, int | str]:
        """protocol section of board.json."""
        return {"request_bytes": self.request_len, "bytes_per_code": self.in_bytes,
                "code_bits": self.in_bits, "reply_bytes": self.reply_len,
                "classes": self.classes, "bytes_per_accumulator": self.acc_bytes,
                "accumulator_bits": self.acc_bits,
                "reply": "accumulators (class 0 first, little-endian two's complement), "
                         "then status: class | 0x80 if the request arrived damaged"}


def protocol_for(model: Model) -> Protocol:
    """The model's protocol; a ValueError naming the model when its classes do not fit."""
    inp, out = model_streams(model)
    classes = out.elems * out.beats
    if classes > MAX_CLASSES:
        raise ValueError(f"{model.name}: {classes} outputs; the UART shell's status byte "
                         f"holds a class below {MAX_CLASSES}")
    return Protocol(model.input.features, inp.bits, classes, out.bits)


def requests(model: Model, codes: np.ndarray) -> list[bytes]:
    """The request of every frame of input codes [N, features]."""
    p = protocol_for(model)
    fields = encode(codes, model_streams(model)[0].dtype)
    return [p.request(row) for row in fields]

"""What the model-level code knows of a layer's hardware: a stage, one module instance with
an AXI-Stream input and output, described by the layer kind's op module (dense.py, conv.py, pool.py).

Every stage module has the ports clk, rst_n, s_axis_{tvalid,tready,tdata,tlast} and
m_axis_{tvalid,tready,tdata,tlast}; tlast marks a frame's last beat. Element k of a beat
sits at bits [k*bits, (k+1)*bits) in flow.packing's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from flow.backends.rtl.pipeline import RequantParams
from flow.datatypes import DataType
from flow.ir import Layer

Params = dict[str, int | str | RequantParams]


@dataclass(frozen=True)
class Stream:
    """One side of a stage: `elems` elements of `dtype` per beat, `beats` beats a frame."""

    elems: int
    dtype: DataType
    beats: int

    @property
    def bits(self) -> int:
        return self.dtype.bits

    @property
    def width(self) -> int:
        return self.elems * self.bits


@dataclass(frozen=True)
class Stage:
    """A layer's instance in the generated top."""

    module: str  # the rtl/ module instantiated
    name: str  # its instance name
    params: Params  # SystemVerilog parameters, in instance order
    inp: Stream
    out: Stream
    comment: str  # one line above the instance in the top
    images: dict[str, str] = field(default_factory=dict)  # memory file name -> $readmemh text
    summary: dict[str, int] = field(default_factory=dict)  # the layer's entry in manifest.json

    def write_images(self, folder: Path) -> None:
        for name, text in self.images.items():
            (folder / name).write_text(text)


@dataclass(frozen=True)
class Timing:
    """A stage's cycle model over whole frames: the cycle it takes each input beat, and the
    cycle each output beat leaves it."""

    taken: list[int]
    out: list[int]


class OpModule(Protocol):
    """What a layer kind's module (registered in ops.OPS) provides."""

    BLOCKS: tuple[str, ...]  # the rtl/ modules it instantiates, dependencies first

    def streams(self, layer: Layer) -> tuple[Stream, Stream]:
        """The layer's input and output streams."""
        ...

    def stage(self, layer: Layer, name: str, image_dir: Path) -> Stage:
        """The layer's instance; parameters name memory images in image_dir."""
        ...

    def output_buffer(self, layer: Layer) -> int:
        """Output beats the stage holds, its output stalled, before its computation stalls
        (what the FIFO after it need not hold)."""
        ...

    def timing(self, layer: Layer, arrivals: list[int]) -> Timing:
        """The stage's cycle model over one or more whole frames, input beat k there to take
        from cycle arrivals[k] (the stage empty at first, its output never stalled)."""
        ...


def sv_value(v: int | str | RequantParams) -> str:
    """A parameter value as SystemVerilog writes it."""
    if isinstance(v, RequantParams):
        return v.sv()
    return f'"{v}"' if isinstance(v, str) else str(v)


def override_value(v: int | str | RequantParams) -> str:
    """A parameter value as Verilator's -G takes it (plain literals only)."""
    return v.literal() if isinstance(v, RequantParams) else sv_value(v)

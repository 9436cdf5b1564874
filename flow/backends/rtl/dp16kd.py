"""Block ROMs on ECP5 as DP16KD instances with their output register on
(rtl/vendor/ecp5/rom_dp16kd.sv): the port width each ROM is cut into and its blocks' INITVAL,
from the same $readmemh images the other paths read, written into build_dir/rtl/ as the
package rom_dp16kd_init. flow.synth reads it with rtl/vendor/ecp5/'s blocks (the ROM and the
swu's line buffer, ram_dp16kd.sv; build_dir/rtl/ecp5/ holds copies), and defines
QFLOW_ECP5, for synth_ecp5 only.

A DP16KD holds 1024 rows of 18 bits. A port of PORT_WIDTH bits reads word `a` from the
array's bits starting at word_offset(PORT_WIDTH, a) (Lattice's EBR layout, the one Yosys'
memory_libmap initializes: at 4 bits a word, each 9-bit byte holds two words and a spare
bit). INITVAL_xx (320 bits) holds rows 16 xx .. 16 xx + 15, 20 bits a row, its top 2 unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flow.backends.rtl.blocks import vendor_blocks
from flow.backends.rtl.pipeline import rom_style

PACKAGE = "rom_dp16kd_init"
INIT_FILE = f"{PACKAGE}.sv"
# port width -> address bits. 1 and 2 bits are left out: at those widths Lattice's
# simulation model takes write data from another pin, a mode qflow has no reason to rely on
PORT_ADDRESS_BITS = {18: 10, 9: 11, 4: 12}
ARRAY_ROWS, ROW_BITS, FIELD_BITS = 1024, 18, 20
INITVALS, INITVAL_ROWS = 64, 16
PATH_CHARS = 1024  # the package's key: MEM_FILE as the top names it, at most this long


@dataclass(frozen=True)
class Geometry:
    """How rom_dp16kd.sv tiles a WIDTH x DEPTH ROM at one port width (the same arithmetic)."""

    port_width: int
    width: int
    depth: int

    @property
    def port_depth(self) -> int:
        return 1 << PORT_ADDRESS_BITS[self.port_width]

    @property
    def paired(self) -> bool:
        """Two columns a block, port A reading the lower half and port B the upper."""
        return self.depth <= self.port_depth // 2

    @property
    def cols(self) -> int:
        return -(-self.width // self.port_width)

    @property
    def rows(self) -> int:
        return -(-self.depth // self.port_depth)

    @property
    def blocks_per_row(self) -> int:
        return -(-self.cols // 2) if self.paired else self.cols

    @property
    def blocks(self) -> int:
        return self.rows * self.blocks_per_row

    def lanes(self, block: int) -> list[tuple[int, int]]:
        """(column, first port address) of each port a block of a row serves."""
        if not self.paired:
            return [(block, 0)]
        return [(c, k * self.port_depth // 2) for k, c in enumerate((2 * block, 2 * block + 1))
                if c < self.cols]


def geometry(width: int, depth: int) -> Geometry:
    """The port width with the fewest blocks, then the fewest rows (output multiplexers)."""
    return min((Geometry(w, width, depth) for w in PORT_ADDRESS_BITS),
               key=lambda g: (g.blocks, g.rows))


def word_offset(port_width: int, address: int) -> int:
    """The array bit where the port's word at `address` starts."""
    return address * port_width + (address // 2 if port_width == 4 else 0)


def block_init(g: Geometry, words: list[int], row: int, block: int) -> int:
    """INITVAL_00 .. INITVAL_3F of one block as one number, INITVAL_xx at bits 320 xx."""
    array = 0
    mask = (1 << g.port_width) - 1
    first = row * g.port_depth
    for col, base in g.lanes(block):
        shift = col * g.port_width
        for a, word in enumerate(words[first:first + min(g.port_depth, g.depth - first)]):
            array |= ((word >> shift) & mask) << word_offset(g.port_width, base + a)
    row_mask = (1 << ROW_BITS) - 1
    return sum(((array >> (r * ROW_BITS)) & row_mask) << (r * FIELD_BITS)
               for r in range(ARRAY_ROWS))


def parse_image(text: str, name: str) -> tuple[list[int], int]:
    """A mem_image's words and width (its whole hex digits: the ROM's WIDTH rounded up to
    4, whose extra bits are 0; rom_dp16kd.sv only instantiates the columns WIDTH needs)."""
    lines = text.split()
    if not lines or len({len(s) for s in lines}) != 1:
        raise ValueError(f"{name}: not a memory image of equal-width hex words")
    return [int(s, 16) for s in lines], 4 * len(lines[0])


def block_roms(images: dict[str, str]) -> dict[str, tuple[Geometry, list[int]]]:
    """The images of block-style ROMs (rom.sv's STYLE "block", by depth), by MEM_FILE."""
    out = {}
    for path, text in images.items():
        words, width = parse_image(text, path)
        if rom_style(len(words)) == "block":
            out[path] = (geometry(width, len(words)), words)
    return out


def init_package(images: dict[str, str]) -> str:
    """The package rom_dp16kd_init: port_width(MEM_FILE) and block(MEM_FILE, row, index)
    (INITVAL_00 .. INITVAL_3F as one 20480-bit value) for every block ROM; `images`: the
    $readmemh text by MEM_FILE, exactly as the top passes it."""
    init_bits = INITVALS * INITVAL_ROWS * FIELD_BITS
    roms = block_roms(images)
    widths, blocks = [], []
    for path, (g, words) in roms.items():
        if len(path) > PATH_CHARS or '"' in path or "\\" in path:
            raise ValueError(f"{path}: a memory image path for rom_dp16kd_init must be at "
                             f"most {PATH_CHARS} characters, without quotes or backslashes")
        widths.append(f'      "{path}": port_width = {g.port_width};')
        blocks.append(f'      "{path}":\n        case (row * 65536 + index)')
        blocks += [f"          {r * 65536 + b}: block = {init_bits}'h"
                   f"{block_init(g, words, r, b):0{init_bits // 4}x};"
                   for r in range(g.rows) for b in range(g.blocks_per_row)]
        blocks.append("          default: ;\n        endcase")
    return "\n".join([
        "// Generated by qflow (flow/backends/rtl/dp16kd.py): the DP16KD port width and",
        "// INITVAL of every block ROM (rtl/vendor/ecp5/rom_dp16kd.sv), keyed by MEM_FILE.",
        f"package {PACKAGE};",
        f"  localparam int PATH_BITS = 8 * {PATH_CHARS};",
        "",
        "  function automatic int port_width(input logic [PATH_BITS-1:0] mem_file);",
        "    port_width = 0;",
        "    case (mem_file)", *widths, "      default: ;", "    endcase",
        "  endfunction",
        "",
        f"  function automatic logic [{init_bits - 1}:0] block(input logic [PATH_BITS-1:0]"
        " mem_file, input int row, input int index);",
        f"    block = {init_bits}'h0;",
        "    case (mem_file)", *blocks, "      default: ;", "    endcase",
        "  endfunction",
        "endpackage", ""])


def ecp5_blocks() -> list[Path]:
    """rtl/vendor/ecp5/: the block ROM and the swu's line buffer as DP16KD instances (outside
    rtl/'s blocks: Verilator has no DP16KD)."""
    return vendor_blocks("ecp5", ("rom_dp16kd.sv", "ram_dp16kd.sv"))


ECP5_FOLDER = "ecp5"  # where a generated rtl/ holds its copies of ecp5_blocks()
# (the other blocks' copies sit side by side in rtl/ itself, without their groups)


def write_init(folder: Path, images: dict[str, str]) -> list[str]:
    """Write the package into `folder` for the images (MEM_FILE as the top names it ->
    $readmemh text); returns what synth_ecp5 reads before the blocks, with QFLOW_ECP5
    defined (the manifest's ecp5_sources, relative to `folder`): the package, then the
    DP16KD blocks, which the caller copies into folder/ECP5_FOLDER."""
    (Path(folder) / INIT_FILE).write_text(init_package(images))
    return [INIT_FILE, *(f"{ECP5_FOLDER}/{p.name}" for p in ecp5_blocks())]

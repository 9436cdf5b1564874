"""The open boards a bitstream is built for: device, clock, UART pins and how to load it.

Pins are the boards' own constraint files':
- iCEBreaker (iCE40UP5K-SG48): 12 MHz clock on pin 35, the FTDI's second channel as UART,
  FPGA RX pin 6, TX pin 9 (icestorm's examples/icebreaker/icebreaker.pcf, set_io CLK 35,
  RX 6, TX 9).
- ULX3S (ECP5 LFE5U-85F, CABGA381): 25 MHz clock on G2; ftdi_txd (the FTDI sends, the FPGA
  receives) on M1, ftdi_rxd (the FPGA sends) on L4; wifi_gpio0 on L2, held high so that
  the ESP32 does not reset the board (emard/ulx3s doc/constraints/ulx3s_v20.lpf).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Board:
    name: str
    title: str  # for messages
    device: str  # key of flow.synth.PNR_DEVICES
    chip: str  # the FPGA, as messages name it
    clock_mhz: float
    pins: dict[str, str]  # board top port -> package pin / site
    tied_high: tuple[str, ...]  # outputs the board top holds at 1
    bitstream_ext: str
    loader_args: tuple[str, ...]  # openFPGALoader's board option (and memory)

    @property
    def family(self) -> str:
        return self.device.split("-")[0]

    def constraints(self, clock_port: str = "clk") -> str:
        """The pin and clock constraints: a .pcf (iCE40) or .lpf (ECP5) file's text."""
        if self.family == "ice40":
            lines = [f"# {self.title}: pins of the board's UART and clock (qflow)"]
            lines += [f"set_io {port} {pin}" for port, pin in self.pins.items()]
            lines.append(f"set_frequency {clock_port} {self.clock_mhz:g}")
            return "\n".join(lines) + "\n"
        lines = [f"# {self.title}: pins of the board's UART and clock (qflow)"]
        for port, site in self.pins.items():
            lines.append(f'LOCATE COMP "{port}" SITE "{site}";')
            pull = "NONE" if port == clock_port else "UP"
            lines.append(f'IOBUF PORT "{port}" PULLMODE={pull} IO_TYPE=LVCMOS33;')
        lines.append(f'FREQUENCY PORT "{clock_port}" {self.clock_mhz:g} MHZ;')
        return "\n".join(lines) + "\n"

    @property
    def constraints_name(self) -> str:
        return f"{self.name}.{'pcf' if self.family == 'ice40' else 'lpf'}"


BOARDS = {
    "icebreaker": Board(
        "icebreaker", "iCEBreaker", "ice40-up5k", "iCE40 UP5K", 12.0,
        {"clk": "35", "uart_rx": "6", "uart_tx": "9"}, (), "bin",
        ("-b", "ice40_generic", "-f")),  # iCE40: written to the SPI flash it boots from
    "ulx3s": Board(
        "ulx3s", "ULX3S", "ecp5-85k", "ECP5 LFE5U-85F", 25.0,
        {"clk": "G2", "uart_rx": "M1", "uart_tx": "L4", "wifi_gpio0": "L2"}, ("wifi_gpio0",),
        "bit", ("-b", "ulx3s")),  # into the FPGA's SRAM (--flash writes the flash)
}

# nextpnr's resource names, as a message explains them
RESOURCES = {
    "ICESTORM_LC": "logic cells (a LUT4 and a flip-flop each)",
    "ICESTORM_RAM": "4 kbit block RAMs",
    "ICESTORM_DSP": "DSP multipliers",
    "ICESTORM_SPRAM": "256 kbit single-port RAMs",
    "SB_IO": "I/O pins",
    "TRELLIS_COMB": "LUT4s",
    "TRELLIS_FF": "flip-flops",
    "TRELLIS_RAMW": "distributed RAM write ports",
    "DP16KD": "18 kbit block RAMs",
    "MULT18X18D": "18x18 multipliers",
    "TRELLIS_IO": "I/O pins",
}


def board(name: str) -> Board:
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; choose from {', '.join(BOARDS)}")
    return BOARDS[name]

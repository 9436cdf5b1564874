// Read-only memory loaded from a $readmemh image, one read port taking an address every
// cycle; the word comes pipeline_pkg::rom_latency() = 2 cycles later. STYLE "block": block
// RAM, then a register (an ECP5 DP16KD's clock-to-out alone is 5.8 ns, and Yosys leaves
// the block's own output register unused); where QFLOW_ECP5 is defined (flow.synth's
// synth_ecp5 runs), DP16KD instances whose own output register is that register
// (vendor/ecp5/rom_dp16kd.sv). "logic": LUTs, for shallow memories, where one
// LUT6 holds a 64-deep bit and a block RAM would sit mostly empty; a register of its own
// drives their address, else Yosys reads the ROM from the address counter's next value,
// putting the counter's carry chain before the ROM's fanout.
module rom #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4,
    parameter MEM_FILE = "",  // untyped: Yosys does not accept `parameter string`
    parameter STYLE = "block"  // Yosys' rom_style: "block" | "logic"
) (
    input  logic                                    clk,
    input  logic [(DEPTH > 1 ? $clog2(DEPTH) : 1)-1:0] addr,
    output logic [WIDTH-1:0]                        data
);
  (* rom_style = STYLE *) logic [WIDTH-1:0] mem[DEPTH];

  if (MEM_FILE != "") begin : g_init
    initial $readmemh(MEM_FILE, mem);
  end else begin : g_zero  // the unparameterized default (lint, Yosys) has no image
    initial for (int i = 0; i < DEPTH; i++) mem[i] = '0;
  end

  if (STYLE == "block") begin : g_block
`ifdef QFLOW_ECP5
    rom_dp16kd #(.WIDTH(WIDTH), .DEPTH(DEPTH), .MEM_FILE(MEM_FILE)) u_dp16kd (.clk, .addr, .data);
`else
    logic [WIDTH-1:0] q;
    always_ff @(posedge clk) begin
      q <= mem[addr];
      data <= q;
    end
`endif
  end else begin : g_logic
    // one address register per COPY_BITS bits of the word, kept apart (Yosys would merge
    // them): one register fanning out to every LUT of a wide ROM (an MVAU's PE x SIMD
    // weights), and the address decoding ABC then shared across the word, made the
    // slowest routes of a wide layer
    localparam int COPY_BITS = 32;
    for (genvar lo = 0; lo < WIDTH; lo += COPY_BITS) begin : g_copy
      localparam int N = WIDTH - lo < COPY_BITS ? WIDTH - lo : COPY_BITS;
      logic [$bits(addr)-1:0] addr_q;
      (* keep *) always_ff @(posedge clk) addr_q <= addr;
      always_ff @(posedge clk) data[lo+:N] <= mem[addr_q][lo+:N];
    end
  end
endmodule

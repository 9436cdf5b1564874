// Read-only memory loaded from a $readmemh image, one registered read port (BRAM/LUTRAM).
module rom #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4,
    parameter MEM_FILE = ""  // untyped: Yosys does not accept `parameter string`
) (
    input  logic                                    clk,
    input  logic                                    en,
    input  logic [(DEPTH > 1 ? $clog2(DEPTH) : 1)-1:0] addr,
    output logic [WIDTH-1:0]                        data
);
  logic [WIDTH-1:0] mem[DEPTH];

  if (MEM_FILE != "") begin : g_init
    initial $readmemh(MEM_FILE, mem);
  end else begin : g_zero  // the unparameterized default (lint, Yosys) has no image
    initial for (int i = 0; i < DEPTH; i++) mem[i] = '0;
  end

  always_ff @(posedge clk) begin
    if (en) data <= mem[addr];
  end
endmodule

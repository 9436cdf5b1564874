// Balanced binary adder tree over N operands of IN_BITS each, signed or unsigned. Level l
// holds ceil(N / 2**l) sums of IN_BITS + l bits each, so no adder is wider than its sum
// needs; each level is one packed vector. With STAGE_LEVELS = k > 0 a register follows
// every k-th level below the last, so the sum comes pipeline_pkg::tree_latency(N, k)
// cycles after its operands, still combinational from the last register (the caller
// registers it, or adds to it first); k = 0: combinational throughout. The registers
// have no enable: the caller's valid bits travel beside them.
module adder_tree #(
    parameter int N = 8,
    parameter int IN_BITS = 1,
    parameter bit SIGNED = 1'b0,
    parameter int STAGE_LEVELS = 2,
    localparam int OUT_BITS = IN_BITS + $clog2(N)
) (
    /* verilator lint_off UNUSEDSIGNAL */  // a tree shallower than one stage has no register
    input  logic                 clk,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic [N*IN_BITS-1:0] in,
    output logic [ OUT_BITS-1:0] sum
);
  localparam int LEVELS = $clog2(N);

  function automatic int nodes(input int l);
    nodes = (N + (1 << l) - 1) >> l;
  endfunction

  // level l: nodes(l) sums of IN_BITS + l bits; the odd one out moves up a level extended.
  // `sums` is the level's adders, `outs` what the next level reads (sums, or registered).
  for (genvar l = 0; l <= LEVELS; l++) begin : g_level
    localparam int WL = IN_BITS + l;
    logic [nodes(l)*WL-1:0] sums, outs;
    if (l == 0) begin : g_leaves
      assign sums = in;
    end else begin : g_sums
      localparam int NP = nodes(l - 1);
      localparam int WP = WL - 1;
      wire [NP*WP-1:0] prev = g_level[l-1].outs;
      for (genvar i = 0; i < NP / 2; i++) begin : g_add
        wire [WP-1:0] a = prev[2*i*WP+:WP];
        wire [WP-1:0] b = prev[(2*i+1)*WP+:WP];
        if (SIGNED) begin : g_s
          assign sums[i*WL+:WL] = WL'($signed(a)) + WL'($signed(b));
        end else begin : g_u
          assign sums[i*WL+:WL] = WL'(a) + WL'(b);
        end
      end
      if (NP % 2 == 1) begin : g_odd
        wire [WP-1:0] a = prev[(NP-1)*WP+:WP];
        assign sums[(NP/2)*WL+:WL] = SIGNED ? {a[WP-1], a} : {1'b0, a};
      end
    end
    if (STAGE_LEVELS > 0 && l > 0 && l < LEVELS && l % STAGE_LEVELS == 0) begin : g_reg
      always_ff @(posedge clk) outs <= sums;
    end else begin : g_wire
      assign outs = sums;
    end
  end
  assign sum = g_level[LEVELS].outs;
endmodule

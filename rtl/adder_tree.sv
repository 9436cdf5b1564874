// Balanced binary adder tree (combinational) over N operands of IN_BITS each, signed or
// unsigned. Level l holds ceil(N / 2**l) sums of IN_BITS + l bits each, so no adder is
// wider than its sum needs; each level is one packed vector.
module adder_tree #(
    parameter int N = 4,
    parameter int IN_BITS = 1,
    parameter bit SIGNED = 1'b0,
    localparam int OUT_BITS = IN_BITS + $clog2(N)
) (
    input  logic [N*IN_BITS-1:0] in,
    output logic [ OUT_BITS-1:0] sum
);
  localparam int LEVELS = $clog2(N);

  function automatic int nodes(input int l);
    nodes = (N + (1 << l) - 1) >> l;
  endfunction

  // level l: nodes(l) sums of IN_BITS + l bits; the odd one out moves up a level extended
  for (genvar l = 0; l <= LEVELS; l++) begin : g_level
    localparam int WL = IN_BITS + l;
    logic [nodes(l)*WL-1:0] sums;
    if (l == 0) begin : g_leaves
      assign sums = in;
    end else begin : g_sums
      localparam int NP = nodes(l - 1);
      localparam int WP = WL - 1;
      wire [NP*WP-1:0] prev = g_level[l-1].sums;
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
  end
  assign sum = g_level[LEVELS].sums;
endmodule

// XNOR-popcount lanes of a binary MVAU: for each of PE rows, the number of the SIMD lanes
// where input bit and weight bit agree (1 encodes +1). The popcount tree is pipelined;
// the sum comes pipeline_pkg::xnor_dot_latency(SIMD) cycles after x and w, registered.
module mvau_xnor_dot #(
    parameter int PE = 2,
    parameter int SIMD = 4,
    localparam int SUM_BITS = 1 + $clog2(SIMD)
) (
    input  logic                   clk,
    input  logic [    PE*SIMD-1:0] x,  // each PE's own copy of the input beat
    input  logic [    PE*SIMD-1:0] w,
    output logic [PE*SUM_BITS-1:0] sum
);
  for (genvar p = 0; p < PE; p++) begin : g_pe
    logic [SUM_BITS-1:0] count;
    adder_tree #(.N(SIMD), .IN_BITS(1), .STAGE_LEVELS(pipeline_pkg::TREE_STAGE_LEVELS)) u_popcount (
        .clk, .in(~(x[p*SIMD+:SIMD] ^ w[p*SIMD+:SIMD])), .sum(count));
    always_ff @(posedge clk) sum[p*SUM_BITS+:SUM_BITS] <= count;
  end
endmodule

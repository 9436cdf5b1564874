// Activation of an MVAU: per PE, compare the accumulator with N_THRES sorted thresholds
// (all in one ROM word, presented with the accumulator) and output
// OUT_BASE + OUT_STEP * count in OUT_BITS. Comparisons registered, the pipelined tree
// counting them, then the code: pipeline_pkg::thresholds_latency(N_THRES) cycles.
module mvau_thresholds #(
    parameter int PE = 2,
    parameter int ACC_BITS = 8,
    parameter int N_THRES = 3,
    parameter int OUT_BITS = 2,
    parameter int OUT_BASE = 0,
    parameter int OUT_STEP = 1,
    // thresholds may lie one past the accumulator range (a level never reached)
    localparam int THR_BITS = ACC_BITS + 1
) (
    input  logic                           clk,
    input  logic [        PE*ACC_BITS-1:0] acc,
    input  logic [PE*N_THRES*THR_BITS-1:0] thresholds,
    output logic [        PE*OUT_BITS-1:0] out_data
);
  localparam int CB = 1 + $clog2(N_THRES);  // the adder tree's sum width

  for (genvar p = 0; p < PE; p++) begin : g_pe
    wire signed [THR_BITS-1:0] a = THR_BITS'($signed(acc[p*ACC_BITS+:ACC_BITS]));
    logic [N_THRES-1:0] reached;
    for (genvar j = 0; j < N_THRES; j++) begin : g_cmp
      always_ff @(posedge clk)
        reached[j] <= a >= $signed(thresholds[(p*N_THRES+j)*THR_BITS+:THR_BITS]);
    end
    logic [CB-1:0] count;
    adder_tree #(.N(N_THRES), .IN_BITS(1), .STAGE_LEVELS(pipeline_pkg::TREE_STAGE_LEVELS)) u_count (
        .clk, .in(reached), .sum(count));
    always_ff @(posedge clk) out_data[p*OUT_BITS+:OUT_BITS] <= OUT_BITS'(OUT_BASE + OUT_STEP * int'(count));
  end
endmodule

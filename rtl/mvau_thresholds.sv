// Activation of an MVAU: per PE, compare the accumulator with N_THRES sorted thresholds
// (all in one ROM word, read by the caller one cycle ahead) and output
// OUT_BASE + OUT_STEP * count in OUT_BITS. Comparisons registered, then the code (latency 2).
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
    input  logic                           rst_n,
    input  logic                           in_valid,
    input  logic                           in_tlast,
    input  logic [        PE*ACC_BITS-1:0] acc,
    input  logic [PE*N_THRES*THR_BITS-1:0] thresholds,
    output logic                           out_valid,
    output logic                           out_tlast,
    output logic [        PE*OUT_BITS-1:0] out_data
);
  localparam int CB = 1 + $clog2(N_THRES);  // the adder tree's sum width

  logic valid_c, tlast_c;

  for (genvar p = 0; p < PE; p++) begin : g_pe
    wire signed [THR_BITS-1:0] a = THR_BITS'($signed(acc[p*ACC_BITS+:ACC_BITS]));
    logic [N_THRES-1:0] reached;
    for (genvar j = 0; j < N_THRES; j++) begin : g_cmp
      always_ff @(posedge clk) begin
        if (in_valid) reached[j] <= a >= $signed(thresholds[(p*N_THRES+j)*THR_BITS+:THR_BITS]);
      end
    end
    logic [CB-1:0] count;
    adder_tree #(.N(N_THRES), .IN_BITS(1)) u_count (.in(reached), .sum(count));
    always_ff @(posedge clk) begin
      if (valid_c) out_data[p*OUT_BITS+:OUT_BITS] <= OUT_BITS'(OUT_BASE + OUT_STEP * int'(count));
    end
  end

  always_ff @(posedge clk) begin
    if (in_valid) tlast_c <= in_tlast;
    if (valid_c) out_tlast <= tlast_c;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      valid_c   <= 1'b0;
      out_valid <= 1'b0;
    end else begin
      valid_c   <= in_valid;
      out_valid <= valid_c;
    end
  end
endmodule

// XNOR-popcount lanes of a binary MVAU: for each of PE rows, the number of the SIMD lanes
// where input bit and weight bit agree (1 encodes +1). Output registered (latency 1); a tag
// travels alongside the data.
module mvau_xnor_dot #(
    parameter int PE = 2,
    parameter int SIMD = 4,
    parameter int TAG_BITS = 1,
    localparam int SUM_BITS = 1 + $clog2(SIMD)
) (
    input  logic                   clk,
    input  logic                   rst_n,
    input  logic                   in_valid,
    input  logic [   TAG_BITS-1:0] in_tag,
    input  logic [       SIMD-1:0] x,
    input  logic [    PE*SIMD-1:0] w,
    output logic                   out_valid,
    output logic [   TAG_BITS-1:0] out_tag,
    output logic [PE*SUM_BITS-1:0] sum
);
  for (genvar p = 0; p < PE; p++) begin : g_pe
    logic [SUM_BITS-1:0] count;
    adder_tree #(.N(SIMD), .IN_BITS(1)) u_popcount (.in(~(x ^ w[p*SIMD+:SIMD])), .sum(count));
    always_ff @(posedge clk) begin
      if (in_valid) sum[p*SUM_BITS+:SUM_BITS] <= count;
    end
  end

  always_ff @(posedge clk) begin
    if (in_valid) out_tag <= in_tag;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) out_valid <= 1'b0;
    else out_valid <= in_valid;
  end
endmodule

// Multiply-accumulate lanes of a multi-bit MVAU: for each of PE rows, the dot product of
// SIMD inputs with SIMD weights. A BIPOLAR operand (1 bit, 1 = +1) selects +/- the other
// instead of multiplying. Products are registered, then the pipelined adder tree, then
// the sum: pipeline_pkg::mac_dot_latency(SIMD) cycles after x and w.
module mvau_mac_dot #(
    parameter int PE = 2,
    parameter int SIMD = 4,
    parameter int X_BITS = 4,
    parameter bit X_SIGNED = 1'b0,
    parameter bit X_BIPOLAR = 1'b0,
    parameter int W_BITS = 4,
    parameter bit W_SIGNED = 1'b1,
    parameter bit W_BIPOLAR = 1'b0,
    // every product fits: |x| <= 2**X_BITS, |w| <= 2**W_BITS, plus a sign bit
    localparam int P_BITS = X_BITS + W_BITS + 1,
    localparam int SUM_BITS = P_BITS + $clog2(SIMD)
) (
    input  logic                   clk,
    input  logic [PE*SIMD*X_BITS-1:0] x,  // each PE's own copy of the input beat
    input  logic [PE*SIMD*W_BITS-1:0] w,
    output logic [PE*SUM_BITS-1:0] sum
);
  // an operand as a signed P_BITS value (BIPOLAR decodes to -1/+1)
  function automatic logic signed [P_BITS-1:0] value(input logic [P_BITS-1:0] bits, input int n,
                                                     input bit is_signed, input bit bipolar);
    logic [P_BITS-1:0] mask;
    mask = (P_BITS'(1) << n) - 1'b1;
    if (bipolar) value = bits[0] ? P_BITS'(1) : -P_BITS'(1);
    else if (is_signed && bits[n-1]) value = bits | ~mask;  // sign-extend
    else value = bits & mask;
  endfunction

  logic [PE*SIMD*P_BITS-1:0] products;

  for (genvar p = 0; p < PE; p++) begin : g_pe
    for (genvar s = 0; s < SIMD; s++) begin : g_lane
      wire [W_BITS-1:0] wb = w[(p*SIMD+s)*W_BITS+:W_BITS];
      wire [X_BITS-1:0] xb = x[(p*SIMD+s)*X_BITS+:X_BITS];
      logic signed [P_BITS-1:0] product;
      if (W_BIPOLAR) begin : g_wsel
        wire signed [P_BITS-1:0] xv = value(P_BITS'(xb), X_BITS, X_SIGNED, X_BIPOLAR);
        assign product = wb[0] ? xv : -xv;
      end else if (X_BIPOLAR) begin : g_xsel
        wire signed [P_BITS-1:0] wv = value(P_BITS'(wb), W_BITS, W_SIGNED, 1'b0);
        assign product = xb[0] ? wv : -wv;
      end else begin : g_mul
        wire signed [P_BITS-1:0] xv = value(P_BITS'(xb), X_BITS, X_SIGNED, 1'b0);
        wire signed [P_BITS-1:0] wv = value(P_BITS'(wb), W_BITS, W_SIGNED, 1'b0);
        assign product = xv * wv;
      end
      always_ff @(posedge clk) products[(p*SIMD+s)*P_BITS+:P_BITS] <= product;
    end
    logic [SUM_BITS-1:0] dot;
    adder_tree #(
        .N(SIMD), .IN_BITS(P_BITS), .SIGNED(1'b1), .STAGE_LEVELS(pipeline_pkg::TREE_STAGE_LEVELS)
    ) u_tree (
        .clk, .in(products[p*SIMD*P_BITS+:SIMD*P_BITS]), .sum(dot));
    always_ff @(posedge clk) sum[p*SUM_BITS+:SUM_BITS] <= dot;
  end

endmodule

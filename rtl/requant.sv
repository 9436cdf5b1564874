// Requantization of an MVAU's accumulators, the IR's second activation form
// (flow/ir/requant.py: TFLite's MultiplyByQuantizedMultiplier, double rounding). Per PE:
//   y = clamp(ZERO_POINT + RDBPOT(SRDHM((acc + bias) << lsh, m), rsh), CLAMP_MIN, CLAMP_MAX)
// with the channel's bias, multiplier m (0 or in [2^30, 2^31)) and shift (lsh = max(shift, 0),
// rsh = max(-shift, 0)) presented with its accumulator.
//   SRDHM(a, m) = (a * m + 2^30) >>> 31: TFLite's nudge then truncation toward zero is
//     rounding half up; its saturating case needs m = -2^31, which the IR excludes.
//   RDBPOT(h, e) = (h + ((2^e - 1 + (h >= 0)) >> 1)) >>> e: rounding half away from zero.
// Widths follow the IR's bounds: SUM_BITS holds acc + bias for every channel, and the
// shifted sum SUM_BITS + LSH_MAX <= 32 bits (flow.ir.Requant.check_range keeps it in int32),
// so the product is that by 31 bits, in two parts for DSP blocks. Six registers, no
// enables: the sum, the multiplier's inputs (shifted sum, m), the product, its high word,
// the right shift, the clamped code (pipeline_pkg::requant_latency()).
module requant #(
    parameter int PE = 2,
    parameter int ACC_BITS = 16,
    parameter int BIAS_BITS = 12,
    parameter int SUM_BITS = 17,
    parameter int LSH_MAX = 0,  // largest left shift of any channel
    parameter int RSH_MAX = 31,  // largest right shift of any channel
    parameter int OUT_BITS = 8,
    parameter int ZERO_POINT = 0,
    parameter int CLAMP_MIN = -128,
    parameter int CLAMP_MAX = 127,
    localparam int M_BITS = 31,
    localparam int LSH_BITS = LSH_MAX > 0 ? $clog2(LSH_MAX + 1) : 1,
    localparam int RSH_BITS = RSH_MAX > 0 ? $clog2(RSH_MAX + 1) : 1
) (
    input  logic                   clk,
    input  logic [PE*ACC_BITS-1:0] acc,  // signed
    input  logic [PE*BIAS_BITS-1:0] bias,  // signed
    input  logic [  PE*M_BITS-1:0] multiplier,
    input  logic [PE*LSH_BITS-1:0] lsh,
    input  logic [PE*RSH_BITS-1:0] rsh,
    output logic [PE*OUT_BITS-1:0] out_data
);
  localparam int A_BITS = SUM_BITS + LSH_MAX;  // the multiplier's signed input
  localparam int P_BITS = A_BITS + M_BITS;  // |a * m| < 2^(A_BITS - 1 + 31)
  // the high word plus the rounding nudge (< 2^(RSH_MAX - 1))
  localparam int R_BITS = (A_BITS > RSH_MAX ? A_BITS : RSH_MAX) + 1;
  // plus the zero point, against the clamp bounds (int32 values)
  localparam int F_BITS = (R_BITS > 32 ? R_BITS : 32) + 1;

  for (genvar p = 0; p < PE; p++) begin : g_pe
    // acc + bias wraps to SUM_BITS, where the true sum fits
    logic signed [SUM_BITS-1:0] sum;
    logic [M_BITS-1:0] m1;
    logic [LSH_BITS-1:0] lsh1;
    logic [RSH_BITS-1:0] rsh1, rsh2, rsh3, rsh4;
    always_ff @(posedge clk) begin
      sum <= SUM_BITS'($signed(acc[p*ACC_BITS+:ACC_BITS])) +
             SUM_BITS'($signed(bias[p*BIAS_BITS+:BIAS_BITS]));
      m1 <= multiplier[p*M_BITS+:M_BITS];
      lsh1 <= lsh[p*LSH_BITS+:LSH_BITS];
      rsh1 <= rsh[p*RSH_BITS+:RSH_BITS];
    end

    // the multiplier's input registers, then the product register (a DSP's A/B and M).
    // a * m as a * m[30:17] * 2^17 + a * m[16:0]: each part fits a DSP48's 18-bit signed
    // B port, and synth_xilinx maps the pair to two DSPs (for a up to 25 bits) where it
    // spends four on the one 31-bit product
    logic signed [A_BITS-1:0] a;
    logic [M_BITS-1:0] m2;
    logic signed [P_BITS-1:0] product;
    wire signed [17:0] m_high = $signed({4'b0, m2[30:17]}), m_low = $signed({1'b0, m2[16:0]});
    always_ff @(posedge clk) begin
      a <= A_BITS'(sum) <<< lsh1;
      m2 <= m1;
      rsh2 <= rsh1;
      product <= (P_BITS'(a) * P_BITS'(m_high) <<< 17) + P_BITS'(a) * P_BITS'(m_low);
      rsh3 <= rsh2;
    end

    // SRDHM: the high word, rounded half up
    logic signed [A_BITS-1:0] high;
    always_ff @(posedge clk) begin
      high <= A_BITS'((product + P_BITS'(1 << 30)) >>> 31);
      rsh4 <= rsh3;
    end

    // RDBPOT: the right shift, rounded half away from zero
    wire [R_BITS-1:0] nudge = ((R_BITS'(1) << rsh4) - R_BITS'(1) + R_BITS'(!high[A_BITS-1])) >> 1;
    logic signed [R_BITS-1:0] rounded;
    always_ff @(posedge clk) rounded <= $signed(R_BITS'(high) + nudge) >>> rsh4;

    // the zero point, the clamp
    wire signed [F_BITS-1:0] y = F_BITS'(rounded) + F_BITS'(ZERO_POINT);
    wire signed [F_BITS-1:0] lo = F_BITS'(CLAMP_MIN), hi = F_BITS'(CLAMP_MAX);
    always_ff @(posedge clk)
      out_data[p*OUT_BITS+:OUT_BITS] <= OUT_BITS'(y < lo ? lo : y > hi ? hi : y);
  end
endmodule

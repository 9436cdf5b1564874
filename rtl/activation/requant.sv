// Requantization of an MVAU's accumulators, the IR's second activation form
// (flow/ir/requant.py), in either of its roundings, per PE with the channel's bias,
// multiplier m (31 unsigned bits) and shift presented with its accumulator.
// HALF_EVEN (one rounding, half to even; shift n = rsh in RSH_MIN..RSH_MAX within 1..62,
// the bias in the product's units):
//   y = clamp(ZERO_POINT + RHE((acc * m + bias) / 2^n), CLAMP_MIN, CLAMP_MAX)
//   RHE(p / 2^n) = (p + 2^(n-1) - 1 + ((p >>> n) & 1)) >>> n
// computed as q = (p + 2^(n-1)) >>> n, the quotient rounded half up, less one where p is
// a tie (the low n bits of p + 2^(n-1) all 0) and q odd: q with bit 0 cleared at a tie.
// So the nudge joins the bias before the product arrives and the last stage holds no
// adder. PRODUCT_BITS holds acc * m and acc * m + bias for every channel (below 2^62 by
// the IR). A shift of PRODUCT_BITS or more rounds every such p to 0, as a shift of
// PRODUCT_BITS does, so larger shifts saturate there; with n >= RSH_MIN the quotient
// needs PRODUCT_BITS + 1 - RSH_MIN bits, so the shifter moves that many by n - RSH_MIN.
// Otherwise TFLite's MultiplyByQuantizedMultiplier (double rounding; m 0 or in
// [2^30, 2^31), lsh = max(shift, 0), rsh = max(-shift, 0)):
//   y = clamp(ZERO_POINT + RDBPOT(SRDHM((acc + bias) << lsh, m), rsh), CLAMP_MIN, CLAMP_MAX)
//   SRDHM(a, m) = (a * m + 2^30) >>> 31: TFLite's nudge then truncation toward zero is
//     rounding half up; its saturating case needs m = -2^31, which the IR excludes.
//   RDBPOT(h, e) = (h + ((2^e - 1 + (h >= 0)) >> 1)) >>> e: rounding half away from zero.
// SUM_BITS holds acc + bias for every channel, and the shifted sum SUM_BITS + LSH_MAX <= 32
// bits (flow.ir.Requant.check_range keeps it in int32).
// Six registers, no enables, either rounding (pipeline_pkg::requant_latency()): the inputs
// (tflite: their sum), the multiplier's inputs (half_even: and the nudged bias), the
// product, the product plus the nudged bias (tflite: its high word), the right shift,
// the clamped code.
module requant #(
    parameter int PE = 2,
    parameter int ACC_BITS = 16,
    parameter int OUT_BITS = 8,
    // the rounding, widths, shift range, zero point and clamp (pipeline_pkg's fields),
    // unpacked below; by default tflite, INT8 out (the arguments in the fields' order)
    parameter pipeline_pkg::requant_params_t REQUANT = pipeline_pkg::requant_params(
        1'b0, 12, 48, 17, 0, 31, 1, 0, -128, 127),
    localparam bit HALF_EVEN = REQUANT.half_even,
    localparam int BIAS_BITS = REQUANT.bias_bits,
    localparam int PRODUCT_BITS = REQUANT.product_bits,
    localparam int SUM_BITS = REQUANT.sum_bits,
    localparam int LSH_MAX = REQUANT.lsh_max,
    localparam int RSH_MAX = REQUANT.rsh_max,
    localparam int RSH_MIN = REQUANT.rsh_min,
    localparam int ZERO_POINT = REQUANT.zero_point,
    localparam int CLAMP_MIN = REQUANT.clamp_min,
    localparam int CLAMP_MAX = REQUANT.clamp_max,
    localparam int M_BITS = 31,
    localparam int LSH_BITS = LSH_MAX > 0 ? $clog2(LSH_MAX + 1) : 1,
    localparam int RSH_BITS = RSH_MAX > 0 ? $clog2(RSH_MAX + 1) : 1
) (
    input  logic                   clk,
    input  logic [PE*ACC_BITS-1:0] acc,  // signed
    input  logic [PE*BIAS_BITS-1:0] bias,  // signed
    input  logic [  PE*M_BITS-1:0] multiplier,
    input  logic [PE*LSH_BITS-1:0] lsh,  // tflite only
    input  logic [PE*RSH_BITS-1:0] rsh,
    output logic [PE*OUT_BITS-1:0] out_data
);
  // the multiplier's signed input: half_even the accumulator, tflite the shifted sum
  localparam int A_BITS = HALF_EVEN ? ACC_BITS : SUM_BITS + LSH_MAX;
  // tflite: |a * m| < 2^(A_BITS - 1 + 31)
  localparam int P_BITS = HALF_EVEN ? PRODUCT_BITS : A_BITS + M_BITS;
  // the shifts carried: n - N_MIN, n up to N_MAX
  localparam int N_MAX = HALF_EVEN && PRODUCT_BITS < RSH_MAX ? PRODUCT_BITS : RSH_MAX;
  localparam int N_MIN = !HALF_EVEN ? 0 : RSH_MIN < N_MAX ? RSH_MIN : N_MAX;
  // the value rounded: half_even the product plus its nudge (< 2^(PRODUCT_BITS - 1)),
  // tflite the high word plus its nudge (< 2^(RSH_MAX - 1))
  localparam int R_BITS = HALF_EVEN ? PRODUCT_BITS + 1 : (A_BITS > RSH_MAX ? A_BITS : RSH_MAX) + 1;
  localparam int Q_BITS = R_BITS - N_MIN;  // its quotient
  // plus the zero point, against the clamp bounds (int32 values)
  localparam int F_BITS = (Q_BITS > 32 ? Q_BITS : 32) + 1;

  for (genvar p = 0; p < PE; p++) begin : g_pe
    wire signed [ACC_BITS-1:0] acc_p = acc[p*ACC_BITS+:ACC_BITS];
    wire signed [BIAS_BITS-1:0] bias_p = bias[p*BIAS_BITS+:BIAS_BITS];
    wire [RSH_BITS-1:0] n = rsh[p*RSH_BITS+:RSH_BITS];
    wire [RSH_BITS-1:0] rsh_p;  // n - N_MIN
    if (N_MAX < RSH_MAX) begin : g_saturate
      assign rsh_p = (n > RSH_BITS'(N_MAX) ? RSH_BITS'(N_MAX) : n) - RSH_BITS'(N_MIN);
    end else begin : g_shift
      assign rsh_p = n - RSH_BITS'(N_MIN);
    end
    logic [M_BITS-1:0] m1, m2;
    logic [RSH_BITS-1:0] rsh1, rsh2, rsh3, rsh4;
    logic signed [A_BITS-1:0] a;
    logic signed [P_BITS-1:0] product;
    logic signed [Q_BITS-1:0] rounded;
    always_ff @(posedge clk) begin
      m1 <= multiplier[p*M_BITS+:M_BITS];
      rsh1 <= rsh_p;
      m2 <= m1;
      rsh2 <= rsh1;
      rsh3 <= rsh2;
      rsh4 <= rsh3;
    end

    // the multiplier's input registers, then the product register (a DSP's A/B and M).
    // a * m as a * m[30:17] * 2^17 + a * m[16:0]: each part fits a DSP48's 18-bit signed
    // B port, and synth_xilinx maps the pair to two DSPs (for a up to 25 bits) where it
    // spends four on the one 31-bit product; the sum wraps to P_BITS, where a * m fits
    wire signed [17:0] m_high = $signed({4'b0, m2[30:17]}), m_low = $signed({1'b0, m2[16:0]});
    wire unused_m = &{1'b0, m_high, m_low};  // a product under 18 bits drops their top
    always_ff @(posedge clk)
      product <= (P_BITS'(a) * P_BITS'(m_high) <<< 17) + P_BITS'(a) * P_BITS'(m_low);

    if (HALF_EVEN) begin : g_half_even
      // t = acc * m + bias + 2^(n-1) fits R_BITS: the nudged bias is exact in NB_BITS,
      // or (a bias wider than the product) counts modulo 2^R_BITS as t does
      localparam int NB_MAX = (BIAS_BITS > N_MAX ? BIAS_BITS : N_MAX) + 1;
      localparam int NB_BITS = NB_MAX < R_BITS ? NB_MAX : R_BITS;
      localparam int B_BITS = BIAS_BITS < NB_BITS ? BIAS_BITS : NB_BITS;
      logic signed [ACC_BITS-1:0] acc1;
      logic signed [B_BITS-1:0] bias1;
      logic signed [NB_BITS-1:0] nudged2, nudged3;
      logic signed [R_BITS-1:0] t;
      always_ff @(posedge clk) begin
        acc1 <= acc_p;
        bias1 <= B_BITS'(bias_p);
        a <= acc1;
        nudged2 <= NB_BITS'(bias1) + ((NB_BITS'(1'b1) << N_MIN << rsh1) >> 1);
        nudged3 <= nudged2;
        t <= R_BITS'(product) + R_BITS'(nudged3);
      end

      // the quotient rounded half up, its bit 0 cleared at a tie
      wire signed [Q_BITS-1:0] q = Q_BITS'(t >>> N_MIN) >>> rsh4;
      wire tie = ~|(t & ((R_BITS'(1) << N_MIN << rsh4) - R_BITS'(1)));
      always_ff @(posedge clk) rounded <= q & ~(Q_BITS'(tie));  // parenthesized for Yosys
      wire unused = &{1'b0, lsh, bias_p};
    end else begin : g_tflite
      // acc + bias wraps to SUM_BITS, where the true sum fits
      logic signed [SUM_BITS-1:0] sum;
      logic [LSH_BITS-1:0] lsh1;
      logic signed [A_BITS-1:0] high;  // SRDHM: the high word, rounded half up
      always_ff @(posedge clk) begin
        sum <= SUM_BITS'(acc_p) + SUM_BITS'(bias_p);
        lsh1 <= lsh[p*LSH_BITS+:LSH_BITS];
        a <= A_BITS'(sum) <<< lsh1;
        high <= A_BITS'((product + P_BITS'(1 << 30)) >>> 31);
      end

      // RDBPOT: the right shift, rounded half away from zero
      wire [R_BITS-1:0] nudge = ((R_BITS'(1) << rsh4) - R_BITS'(1) + R_BITS'(!high[A_BITS-1])) >> 1;
      always_ff @(posedge clk) rounded <= $signed(R_BITS'(high) + nudge) >>> rsh4;
    end

    // the zero point, the clamp
    wire signed [F_BITS-1:0] y = F_BITS'(rounded) + F_BITS'(ZERO_POINT);
    wire signed [F_BITS-1:0] lo = F_BITS'(CLAMP_MIN), hi = F_BITS'(CLAMP_MAX);
    always_ff @(posedge clk)
      out_data[p*OUT_BITS+:OUT_BITS] <= OUT_BITS'(y < lo ? lo : y > hi ? hi : y);
  end
endmodule

// A reduction of every window, per channel: windows arrive from a swu as TAPS beats of
// each channel group's PE codes (window order (tap, channel group), C/PE groups), and
// leave as C/PE beats of PE results, one per group, with the window's last tap.
// MODE 0, max: codes compare as SIGNED or unsigned fields; for BIPOLAR (1 bit, 1 = +1) the
// max is an OR of bits. MODE 1, average (Brevitas' TruncAvgPool2d): the window's sum of
// codes in ACC_BITS signed bits, divided by 2^SHIFT rounding half to even (HALF_EVEN) or
// down (times 2^-SHIFT for SHIFT < 0), clamped to [LO, HI], as OUT_BITS-bit codes.
// The running results of a window's groups sit in a small memory; the result goes through
// an axis_fifo, so tready comes from registers (the tap counter and the FIFO's count).
module pool_reduce #(
    parameter int C = 4,
    parameter int PE = 2,
    parameter int TAPS = 9,
    parameter int ELEM_BITS = 2,
    parameter bit SIGNED = 1'b0,
    parameter int MODE = 0,
    parameter int OUT_BITS = ELEM_BITS,
    parameter int ACC_BITS = ELEM_BITS,
    parameter int SHIFT = 0,
    parameter bit HALF_EVEN = 1'b0,
    parameter int LO = 0,
    parameter int HI = 0
) (
    input  logic                   clk,
    input  logic                   rst_n,
    input  logic                   s_axis_tvalid,
    output logic                   s_axis_tready,
    input  logic [PE*ELEM_BITS-1:0] s_axis_tdata,
    input  logic                   s_axis_tlast,
    output logic                   m_axis_tvalid,
    input  logic                   m_axis_tready,
    output logic [PE*OUT_BITS-1:0] m_axis_tdata,
    output logic                   m_axis_tlast
);
  localparam int CF = C / PE;
  localparam int CFW = CF > 1 ? $clog2(CF) : 1;
  localparam int TW = TAPS > 1 ? $clog2(TAPS) : 1;
  // the running value of one lane: a code (max) or a sum (average)
  localparam int RUN_BITS = MODE == 0 ? ELEM_BITS : ACC_BITS;

  if (C % PE != 0) begin : g_check
    $error("pool_reduce: PE must divide C");
  end
  if (MODE == 0 && OUT_BITS != ELEM_BITS) begin : g_check_max
    $error("pool_reduce: a max keeps the code width");
  end

  logic [CFW-1:0] cf;
  logic [TW-1:0] tap;
  logic out_ready;
  wire last_tap = tap == TW'(TAPS - 1);
  wire take = s_axis_tvalid && s_axis_tready;
  assign s_axis_tready = !last_tap || out_ready;

  // of the taps so far, this beat's included (unread by a one-tap sum: nothing to keep)
  /* verilator lint_off UNUSEDSIGNAL */
  logic [PE*RUN_BITS-1:0] running;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [PE*RUN_BITS-1:0] kept;
  logic [PE*OUT_BITS-1:0] result;
  if (TAPS > 1) begin : g_running
    logic [PE*RUN_BITS-1:0] partial[CF];
    assign kept = partial[cf];
    always_ff @(posedge clk) begin
      if (take && !last_tap) partial[cf] <= running;
    end
  end else begin : g_single
    assign kept = '0;
  end

  for (genvar p = 0; p < PE; p++) begin : g_lane
    wire [ELEM_BITS-1:0] x = s_axis_tdata[p*ELEM_BITS+:ELEM_BITS];
    wire [RUN_BITS-1:0] m = kept[p*RUN_BITS+:RUN_BITS];
    if (MODE == 0) begin : g_max
      wire x_wins = SIGNED ? $signed(x) > $signed(m) : x > m;
      assign running[p*RUN_BITS+:RUN_BITS] = tap == '0 || x_wins ? x : m;
      assign result[p*OUT_BITS+:OUT_BITS] = running[p*RUN_BITS+:RUN_BITS];
    end else begin : g_sum
      // a quotient wide enough for the left shift, the rounding bias and the clamp's compare
      localparam int S = SHIFT > 0 ? SHIFT : 1;
      localparam int QW = (ACC_BITS > S ? ACC_BITS : S) + (SHIFT < 0 ? -SHIFT : 0) + 2;
      wire signed [ACC_BITS-1:0] xs = SIGNED ? ACC_BITS'($signed(x)) : ACC_BITS'({1'b0, x});
      wire signed [ACC_BITS-1:0] sum = (tap == '0 ? '0 : $signed(m)) + xs;
      logic signed [QW-1:0] q;
      assign running[p*RUN_BITS+:RUN_BITS] = sum;
      if (SHIFT <= 0) begin : g_left
        assign q = QW'(sum) <<< (SHIFT < 0 ? -SHIFT : 0);
      end else if (HALF_EVEN) begin : g_even
        // half to even: (sum + 2^(S-1) - 1 + the floor quotient's parity, bit S) >> S
        wire signed [QW-1:0] wide = QW'(sum);
        wire signed [QW-1:0] biased = wide + QW'((1 << (S - 1)) - 1) + QW'(wide[S]);
        assign q = biased >>> S;
      end else begin : g_floor
        assign q = QW'(sum) >>> S;
      end
      wire signed [QW-1:0] lo = QW'(LO), hi = QW'(HI);
      // clamped into OUT_BITS: the bits above are its sign extension
      /* verilator lint_off UNUSEDSIGNAL */
      wire signed [QW-1:0] y = q < lo ? lo : q > hi ? hi : q;
      /* verilator lint_on UNUSEDSIGNAL */
      assign result[p*OUT_BITS+:OUT_BITS] = y[OUT_BITS-1:0];
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      cf <= '0;
      tap <= '0;
    end else if (take) begin
      cf <= cf == CFW'(CF - 1) ? '0 : cf + 1'b1;
      if (cf == CFW'(CF - 1)) tap <= last_tap ? '0 : tap + 1'b1;
    end
  end

  axis_fifo #(.WIDTH(PE * OUT_BITS), .DEPTH(2)) u_out (
      .clk, .rst_n,
      .s_axis_tvalid(take && last_tap), .s_axis_tready(out_ready), .s_axis_tdata(result),
      .s_axis_tlast(s_axis_tlast),
      .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
endmodule

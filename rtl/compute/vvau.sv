// Vector-vector-activation unit: the depthwise convolution behind a swu, each channel's
// dot product over its own TAPS window elements (FINN's VVAU). Windows arrive as TAPS
// beats of every channel group's PE codes (window order (tap, channel group), C/PE groups,
// PE channels a beat: the swu's SIMD is PE); PE multiply-accumulate lanes take one beat a
// cycle, so a window takes TAPS * C/PE cycles. With the window's last tap of a group its
// PE results leave as one beat through activation.sv (thresholded or requantized codes, or
// the signed ACC_BITS accumulators); tlast follows the input's on the window's last tap.
//
// The running sums of a window's groups sit in a small memory (one register for C = PE),
// read and written back as each product arrives. Flow control is by credit as in the mvau:
// a group's last tap is only taken when the output FIFO is sure to have room for its
// result, so the datapath never stalls and s_axis_tready depends on registers only.
module vvau #(
    parameter int C = 4,
    parameter int PE = 2,
    parameter int TAPS = 9,
    parameter int IN_BITS = 2,
    parameter bit IN_SIGNED = 1'b1,
    parameter bit IN_BIPOLAR = 1'b0,
    parameter int W_BITS = 2,
    parameter bit W_SIGNED = 1'b1,
    parameter bit W_BIPOLAR = 1'b0,
    parameter int ACC_BITS = 8,
    parameter int N_THRES = 1,  // 0: requantization (REQUANT.enable) or accumulators out
    parameter int OUT_BITS = 1,
    parameter int OUT_BASE = 0,
    parameter int OUT_STEP = 1,
    parameter WEIGHTS_FILE = "",  // word tap*CF+cf: W[cf*PE+p][tap] at p*W_BITS
    parameter ACTIVATION_FILE = "",  // word cf: activation.sv's word f, for channels cf*PE..
    parameter WEIGHTS_STYLE = "logic",  // rom STYLE of each memory: "block" | "logic"
    parameter ACTIVATION_STYLE = "logic",
    parameter pipeline_pkg::requant_params_t REQUANT = '0,  // the requantization; '0: none
    localparam int Y_BITS = N_THRES > 0 || REQUANT.enable ? OUT_BITS : ACC_BITS
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic                  s_axis_tvalid,
    output logic                  s_axis_tready,
    input  logic [PE*IN_BITS-1:0] s_axis_tdata,
    input  logic                  s_axis_tlast,
    output logic                  m_axis_tvalid,
    input  logic                  m_axis_tready,
    output logic [ PE*Y_BITS-1:0] m_axis_tdata,
    output logic                  m_axis_tlast
);
  localparam int CF = C / PE;
  localparam int CFW = CF > 1 ? $clog2(CF) : 1;
  localparam int TW = TAPS > 1 ? $clog2(TAPS) : 1;
  localparam int WAW = TAPS * CF > 1 ? $clog2(TAPS * CF) : 1;
  // pipeline depths after a beat's issue, as in the mvau: weights and input meet (W_AT),
  // the products (DOT_AT), the running sum with them (ACC_AT), the result entering the
  // output FIFO (PIPE)
  localparam int W_AT = pipeline_pkg::rom_latency();
  localparam int DOT_AT = W_AT + pipeline_pkg::mac_dot_latency(1);
  localparam int ACC_AT = DOT_AT + 1;
  localparam int PIPE = ACC_AT + pipeline_pkg::activation_latency(N_THRES, REQUANT.enable);
  localparam int OUT_DEPTH = PIPE + 2;
  localparam int CRW = $clog2(OUT_DEPTH + 1);
  localparam int TAG_BITS = 3 + CFW;  // {first, last, tlast, cf} of a beat
  localparam int FIRST = CFW + 2, LAST = CFW + 1, TLAST = CFW;

  if (C % PE != 0) begin : g_check
    $error("vvau: PE must divide C");
  end

  // ---- issue: counters, weight ROM read ------------------------------------------------
  logic [CFW-1:0] cf;
  logic [TW-1:0] tap;
  logic [WAW-1:0] waddr;  // tap * CF + cf
  logic [CRW-1:0] credits;
  logic out_pop;

  wire last_tap = tap == TW'(TAPS - 1);
  wire credit_ok = !last_tap || credits != '0;
  wire issue = s_axis_tvalid && credit_ok;
  assign s_axis_tready = credit_ok;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      cf <= '0;
      tap <= '0;
      waddr <= '0;
      credits <= CRW'(OUT_DEPTH);
    end else begin
      if (issue) begin
        cf <= cf == CFW'(CF - 1) ? '0 : cf + 1'b1;
        if (cf == CFW'(CF - 1)) tap <= last_tap ? '0 : tap + 1'b1;
        waddr <= waddr == WAW'(TAPS * CF - 1) ? '0 : waddr + 1'b1;
      end
      credits <= credits - CRW'(issue && last_tap) + CRW'(out_pop);
    end
  end

  // tag_q[k], valid_q[k]: the beat issued k cycles ago
  wire [TAG_BITS-1:0] tag0 = {tap == '0, last_tap, last_tap && s_axis_tlast, cf};
  logic [PIPE:1][TAG_BITS-1:0] tag_q;
  logic [PIPE:1] valid_q;
  always_ff @(posedge clk) tag_q <= {tag_q[PIPE-1:1], tag0};
  always_ff @(posedge clk) begin
    if (!rst_n) valid_q <= '0;
    else valid_q <= {valid_q[PIPE-1:1], issue};
  end

  // the beat meets its weights W_AT = 2 cycles after issue
  if (W_AT != 2) begin : g_check_rom
    $error("vvau: the input path is written for a ROM latency of 2");
  end
  logic [PE*IN_BITS-1:0] x_q, x;
  always_ff @(posedge clk) begin
    x_q <= s_axis_tdata;
    x <= x_q;
  end
  logic [PE*W_BITS-1:0] w;
  rom #(.WIDTH(PE * W_BITS), .DEPTH(TAPS * CF), .MEM_FILE(WEIGHTS_FILE),
        .STYLE(WEIGHTS_STYLE)) u_weights (.clk, .addr(waddr), .data(w));

  // ---- one product per PE lane (a dot product of one element) --------------------------
  localparam int SUM_BITS = IN_BITS + W_BITS + 1;
  logic [PE*SUM_BITS-1:0] dot;
  mvau_mac_dot #(
      .PE(PE), .SIMD(1),
      .X_BITS(IN_BITS), .X_SIGNED(IN_SIGNED), .X_BIPOLAR(IN_BIPOLAR),
      .W_BITS(W_BITS), .W_SIGNED(W_SIGNED), .W_BIPOLAR(W_BIPOLAR)
  ) u_dot (.clk, .x, .w, .sum(dot));

  // ---- running sums of the window's groups ----------------------------------------------
  wire dot_valid = valid_q[DOT_AT];
  wire dot_first = tag_q[DOT_AT][FIRST];
  wire [CFW-1:0] dot_cf = tag_q[DOT_AT][CFW-1:0];
  logic [PE*ACC_BITS-1:0] partial[CF];
  logic [PE*ACC_BITS-1:0] running, acc;
  assign running = partial[dot_cf];

  logic [PE*ACC_BITS-1:0] sum;
  for (genvar p = 0; p < PE; p++) begin : g_acc
    wire [ACC_BITS-1:0] part = ACC_BITS'($signed(dot[p*SUM_BITS+:SUM_BITS]));
    assign sum[p*ACC_BITS+:ACC_BITS] =
        (dot_first ? '0 : running[p*ACC_BITS+:ACC_BITS]) + part;
  end
  always_ff @(posedge clk) begin
    if (dot_valid) begin
      partial[dot_cf] <= sum;
      acc <= sum;
    end
  end

  // ---- activation, output FIFO ------------------------------------------------------------
  wire y_valid = valid_q[PIPE] && tag_q[PIPE][LAST];
  wire y_tlast = tag_q[PIPE][TLAST];
  logic [PE*Y_BITS-1:0] y;

  // read so that the group's parameters arrive with its sum, at ACC_AT
  activation #(
      .PE(PE), .FOLDS(CF), .ACC_BITS(ACC_BITS), .N_THRES(N_THRES), .OUT_BITS(OUT_BITS),
      .OUT_BASE(OUT_BASE), .OUT_STEP(OUT_STEP), .ACTIVATION_FILE(ACTIVATION_FILE),
      .ACTIVATION_STYLE(ACTIVATION_STYLE), .REQUANT(REQUANT)
  ) u_act (
      .clk, .addr(tag_q[ACC_AT-pipeline_pkg::rom_latency()][CFW-1:0]), .acc, .y);

  logic out_ready;
  axis_fifo #(.WIDTH(PE * Y_BITS), .DEPTH(OUT_DEPTH)) u_out (
      .clk, .rst_n,
      .s_axis_tvalid(y_valid), .s_axis_tready(out_ready), .s_axis_tdata(y), .s_axis_tlast(y_tlast),
      .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
  assign out_pop = m_axis_tvalid && m_axis_tready;

`ifndef SYNTHESIS
  // credits guarantee room: a full FIFO here is a bug in this module
  always_ff @(posedge clk) begin
    if (rst_n && y_valid && !out_ready) $error("vvau: output FIFO overflow");
  end
`endif
endmodule

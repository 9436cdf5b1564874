// A convolution layer: a swu turning the channel-last input frame into windows, and an
// mvau computing C_OUT output channels of every window (weights [C_OUT, KH*KW*C], window
// order (kh, kw, c)). Input: SIMD codes of ELEM_BITS a beat; output as the mvau's, PE
// channels a beat, the (OH, OW, C_OUT) frame channel-last. With TERNARY_OUT (BIPOLAR input
// and padding) the windows carry 2-bit signed codes, a padded tap as 0, into the mvau's
// multiply-accumulate lanes; otherwise the mvau sees the input type itself (XNOR lanes
// for BIPOLAR x BIPOLAR). With DEPTHWISE (C_OUT = C) a vvau takes the windows instead, each
// channel's own taps, PE channels a beat: the swu's SIMD is then PE.
module conv_layer #(
    parameter int H = 5,
    parameter int W = 5,
    parameter int C = 4,
    parameter int KH = 3,
    parameter int KW = 3,
    parameter int SH = 1,
    parameter int SW = 1,
    parameter int PT = 0,
    parameter int PL = 0,
    parameter int PB = 0,
    parameter int PR = 0,
    parameter int PAD_VALUE = 0,
    parameter bit TERNARY_OUT = 1'b0,
    parameter bit DEPTHWISE = 1'b0,
    parameter int C_OUT = 4,
    parameter int PE = 2,
    parameter int SIMD = 2,
    parameter int ELEM_BITS = 1,
    parameter bit ELEM_SIGNED = 1'b0,
    parameter bit ELEM_BIPOLAR = 1'b1,
    parameter int W_BITS = 1,
    parameter bit W_SIGNED = 1'b0,
    parameter bit W_BIPOLAR = 1'b1,
    parameter int ACC_BITS = 7,
    parameter int N_THRES = 1,
    parameter int OUT_BITS = 1,
    parameter int OUT_BASE = 0,
    parameter int OUT_STEP = 1,
    parameter WEIGHTS_FILE = "",
    parameter ACTIVATION_FILE = "",
    parameter WEIGHTS_STYLE = "block",
    parameter ACTIVATION_STYLE = "logic",
    parameter pipeline_pkg::requant_params_t REQUANT = '0,  // the mvau's (vvau's) requantization
    localparam int TAP_BITS = TERNARY_OUT ? 2 : ELEM_BITS,
    localparam int Y_BITS = N_THRES > 0 || REQUANT.enable ? OUT_BITS : ACC_BITS
) (
    input  logic                      clk,
    input  logic                      rst_n,
    input  logic                      s_axis_tvalid,
    output logic                      s_axis_tready,
    input  logic [SIMD*ELEM_BITS-1:0] s_axis_tdata,
    input  logic                      s_axis_tlast,
    output logic                      m_axis_tvalid,
    input  logic                      m_axis_tready,
    output logic [     PE*Y_BITS-1:0] m_axis_tdata,
    output logic                      m_axis_tlast
);
  logic win_tvalid, win_tready, win_tlast;
  logic [SIMD*TAP_BITS-1:0] win_tdata;

  swu #(
      .H(H), .W(W), .C(C), .SIMD(SIMD), .KH(KH), .KW(KW), .SH(SH), .SW(SW),
      .PT(PT), .PL(PL), .PB(PB), .PR(PR), .ELEM_BITS(ELEM_BITS), .PAD_VALUE(PAD_VALUE),
      .TERNARY_OUT(TERNARY_OUT)
  ) u_swu (
      .clk, .rst_n, .s_axis_tvalid, .s_axis_tready, .s_axis_tdata, .s_axis_tlast,
      .m_axis_tvalid(win_tvalid), .m_axis_tready(win_tready), .m_axis_tdata(win_tdata),
      .m_axis_tlast(win_tlast));

  if (DEPTHWISE) begin : g_vvau
    if (C_OUT != C || SIMD != PE) begin : g_check
      $error("conv_layer: a depthwise layer has C_OUT = C and SIMD = PE");
    end
    vvau #(
        .C(C), .PE(PE), .TAPS(KH * KW),
        .IN_BITS(TAP_BITS), .IN_SIGNED(TERNARY_OUT ? 1'b1 : ELEM_SIGNED),
        .IN_BIPOLAR(TERNARY_OUT ? 1'b0 : ELEM_BIPOLAR),
        .W_BITS(W_BITS), .W_SIGNED(W_SIGNED), .W_BIPOLAR(W_BIPOLAR), .ACC_BITS(ACC_BITS),
        .N_THRES(N_THRES), .OUT_BITS(OUT_BITS), .OUT_BASE(OUT_BASE), .OUT_STEP(OUT_STEP),
        .WEIGHTS_FILE(WEIGHTS_FILE), .ACTIVATION_FILE(ACTIVATION_FILE),
        .WEIGHTS_STYLE(WEIGHTS_STYLE), .ACTIVATION_STYLE(ACTIVATION_STYLE), .REQUANT(REQUANT)
    ) u_vvau (
        .clk, .rst_n, .s_axis_tvalid(win_tvalid), .s_axis_tready(win_tready),
        .s_axis_tdata(win_tdata), .s_axis_tlast(win_tlast),
        .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
  end else begin : g_mvau
    mvau #(
        .MW(KH * KW * C), .MH(C_OUT), .PE(PE), .SIMD(SIMD),
        .IN_BITS(TAP_BITS), .IN_SIGNED(TERNARY_OUT ? 1'b1 : ELEM_SIGNED),
        .IN_BIPOLAR(TERNARY_OUT ? 1'b0 : ELEM_BIPOLAR),
        .W_BITS(W_BITS), .W_SIGNED(W_SIGNED), .W_BIPOLAR(W_BIPOLAR), .ACC_BITS(ACC_BITS),
        .N_THRES(N_THRES), .OUT_BITS(OUT_BITS), .OUT_BASE(OUT_BASE), .OUT_STEP(OUT_STEP),
        .WEIGHTS_FILE(WEIGHTS_FILE), .ACTIVATION_FILE(ACTIVATION_FILE),
        .WEIGHTS_STYLE(WEIGHTS_STYLE), .ACTIVATION_STYLE(ACTIVATION_STYLE), .REQUANT(REQUANT)
    ) u_mvau (
        .clk, .rst_n, .s_axis_tvalid(win_tvalid), .s_axis_tready(win_tready),
        .s_axis_tdata(win_tdata), .s_axis_tlast(win_tlast),
        .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
  end
endmodule

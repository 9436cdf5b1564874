// A pooling layer: a swu turning the channel-last frame into windows and pool_reduce
// reducing each window per channel. MODE 0, max: padded taps hold the type's smallest
// code (PAD_VALUE) so that they never win; PE codes of ELEM_BITS a beat in and out.
// MODE 1, average: padded taps hold code 0; the sum, shift, rounding and clamp of
// pool_reduce give PE codes of OUT_BITS a beat out. A BIPOLAR input (1 bit, 1 = +1) has no
// code 0: the swu widens its taps to 2-bit signed codes (+1, -1, 0 when padded) first.
module pool_layer #(
    parameter int H = 4,
    parameter int W = 4,
    parameter int C = 2,
    parameter int PE = 1,
    parameter int KH = 2,
    parameter int KW = 2,
    parameter int SH = 2,
    parameter int SW = 2,
    parameter int PT = 0,
    parameter int PL = 0,
    parameter int PB = 0,
    parameter int PR = 0,
    parameter int ELEM_BITS = 1,
    parameter bit SIGNED = 1'b0,
    parameter bit BIPOLAR = 1'b0,  // 1-bit codes, 1 = +1 and 0 = -1 (MODE 1 sums them)
    parameter int PAD_VALUE = 0,
    parameter int MODE = 0,
    parameter int OUT_BITS = ELEM_BITS,
    parameter int ACC_BITS = ELEM_BITS,
    parameter int SHIFT = 0,
    parameter bit HALF_EVEN = 1'b0,
    parameter int LO = 0,
    parameter int HI = 0
) (
    input  logic                    clk,
    input  logic                    rst_n,
    input  logic                    s_axis_tvalid,
    output logic                    s_axis_tready,
    input  logic [PE*ELEM_BITS-1:0] s_axis_tdata,
    input  logic                    s_axis_tlast,
    output logic                    m_axis_tvalid,
    input  logic                    m_axis_tready,
    output logic [PE*OUT_BITS-1:0]  m_axis_tdata,
    output logic                    m_axis_tlast
);
  localparam bit TERNARY = MODE == 1 && BIPOLAR;  // a sum of BIPOLAR codes
  localparam int TAP_BITS = TERNARY ? 2 : ELEM_BITS;
  logic win_tvalid, win_tready, win_tlast;
  logic [PE*TAP_BITS-1:0] win_tdata;

  swu #(
      .H(H), .W(W), .C(C), .SIMD(PE), .KH(KH), .KW(KW), .SH(SH), .SW(SW),
      .PT(PT), .PL(PL), .PB(PB), .PR(PR), .ELEM_BITS(ELEM_BITS), .PAD_VALUE(PAD_VALUE),
      .TERNARY_OUT(TERNARY)
  ) u_swu (
      .clk, .rst_n, .s_axis_tvalid, .s_axis_tready, .s_axis_tdata, .s_axis_tlast,
      .m_axis_tvalid(win_tvalid), .m_axis_tready(win_tready), .m_axis_tdata(win_tdata),
      .m_axis_tlast(win_tlast));

  pool_reduce #(
      .C(C), .PE(PE), .TAPS(KH * KW), .ELEM_BITS(TAP_BITS), .SIGNED(SIGNED || TERNARY),
      .MODE(MODE),
      .OUT_BITS(OUT_BITS), .ACC_BITS(ACC_BITS), .SHIFT(SHIFT), .HALF_EVEN(HALF_EVEN), .LO(LO),
      .HI(HI)
  ) u_reduce (
      .clk, .rst_n, .s_axis_tvalid(win_tvalid), .s_axis_tready(win_tready),
      .s_axis_tdata(win_tdata), .s_axis_tlast(win_tlast),
      .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
endmodule

// The max of every window, per channel: windows arrive from a swu as TAPS beats of each
// channel group's PE codes (window order (tap, channel group), C/PE groups), and leave as
// C/PE beats of PE maxima, one per group, with the window's last tap. Codes compare as
// SIGNED or unsigned fields; for BIPOLAR (1 bit, 1 = +1) the max is an OR of bits. The
// running maxima of a window's groups sit in a small memory; the result goes through an
// axis_fifo, so tready comes from registers (the tap counter and the FIFO's count).
module pool_reduce #(
    parameter int C = 4,
    parameter int PE = 2,
    parameter int TAPS = 9,
    parameter int ELEM_BITS = 2,
    parameter bit SIGNED = 1'b0
) (
    input  logic                    clk,
    input  logic                    rst_n,
    input  logic                    s_axis_tvalid,
    output logic                    s_axis_tready,
    input  logic [PE*ELEM_BITS-1:0] s_axis_tdata,
    input  logic                    s_axis_tlast,
    output logic                    m_axis_tvalid,
    input  logic                    m_axis_tready,
    output logic [PE*ELEM_BITS-1:0] m_axis_tdata,
    output logic                    m_axis_tlast
);
  localparam int CF = C / PE;
  localparam int CFW = CF > 1 ? $clog2(CF) : 1;
  localparam int TW = TAPS > 1 ? $clog2(TAPS) : 1;

  if (C % PE != 0) begin : g_check
    $error("pool_reduce: PE must divide C");
  end

  logic [CFW-1:0] cf;
  logic [TW-1:0] tap;
  logic out_ready;
  wire last_tap = tap == TW'(TAPS - 1);
  wire take = s_axis_tvalid && s_axis_tready;
  assign s_axis_tready = !last_tap || out_ready;

  logic [PE*ELEM_BITS-1:0] maxima;  // of the taps so far, this beat's included
  if (TAPS > 1) begin : g_running
    logic [PE*ELEM_BITS-1:0] partial[CF];
    logic [PE*ELEM_BITS-1:0] kept;
    assign kept = partial[cf];
    for (genvar p = 0; p < PE; p++) begin : g_lane
      wire [ELEM_BITS-1:0] x = s_axis_tdata[p*ELEM_BITS+:ELEM_BITS];
      wire [ELEM_BITS-1:0] m = kept[p*ELEM_BITS+:ELEM_BITS];
      wire x_wins = SIGNED ? $signed(x) > $signed(m) : x > m;
      assign maxima[p*ELEM_BITS+:ELEM_BITS] = tap == '0 || x_wins ? x : m;
    end
    always_ff @(posedge clk) begin
      if (take && !last_tap) partial[cf] <= maxima;
    end
  end else begin : g_single
    assign maxima = s_axis_tdata;
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

  axis_fifo #(.WIDTH(PE * ELEM_BITS), .DEPTH(2)) u_out (
      .clk, .rst_n,
      .s_axis_tvalid(take && last_tap), .s_axis_tready(out_ready), .s_axis_tdata(maxima),
      .s_axis_tlast(s_axis_tlast),
      .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
endmodule

// Sliding-window unit: turns a channel-last frame (H, W, C), SIMD elements a beat (C/SIMD
// beats a pixel, raster order), into every output position's window in (kh, kw, c) order,
// KH*KW*C/SIMD beats a window, windows in raster order of the (OH, OW) outputs: the input
// vector of an MVAU computing a convolution, or of pool_reduce. Padded taps (explicit
// pads top, left, bottom, right) carry PAD_VALUE in every lane; with TERNARY_OUT a BIPOLAR
// input (1 bit, 1 = +1) leaves as 2-bit signed codes +1 / -1 and a padded tap as 0, so
// that the dot product behind it counts a padded tap as nothing (never as -1 or +1).
//
// The line buffer (one inferred memory, BRAM or LUT RAM by size) holds ROWS whole input
// rows (pipeline_pkg::swu_rows), a ring of row slots. `filled` counts the complete rows
// written past the oldest row the reader still needs. The writer takes a beat while a
// slot is free; the reader starts an output row's taps only when every row that output
// row needs is complete (on the last output row: every remaining row of the frame, so a
// frame's unused bottom rows are consumed too), and frees the rows it is done with after
// each output row. ROWS leaves room for the writer to run ahead into the next rows and
// the next frame, so a reader-bound unit emits a beat every cycle across rows and frames.
//
// Output: a memory read (1 cycle), then an axis_fifo, with credits as in the MVAU: the
// reader issues only when the FIFO is sure to have room, and both tready and tvalid come
// from registers. tlast is set on the frame's last beat; the input's tlast is only checked
// (in simulation) to sit on each frame's last input beat.
module swu #(
    parameter int H = 5,
    parameter int W = 5,
    parameter int C = 2,
    parameter int SIMD = 1,
    parameter int KH = 3,
    parameter int KW = 3,
    parameter int SH = 1,
    parameter int SW = 1,
    parameter int PT = 1,  // pads: top, left, bottom, right
    parameter int PL = 1,
    parameter int PB = 1,
    parameter int PR = 1,
    parameter int ELEM_BITS = 1,
    parameter int PAD_VALUE = 0,  // a padded tap's code (two's complement in ELEM_BITS)
    parameter bit TERNARY_OUT = 1'b0,  // BIPOLAR in, 2-bit {+1, -1, 0 = padded} out
    localparam int OUT_BITS = TERNARY_OUT ? 2 : ELEM_BITS
) (
    input  logic                      clk,
    input  logic                      rst_n,
    input  logic                      s_axis_tvalid,
    output logic                      s_axis_tready,
    input  logic [SIMD*ELEM_BITS-1:0] s_axis_tdata,
    input  logic                      s_axis_tlast,
    output logic                      m_axis_tvalid,
    input  logic                      m_axis_tready,
    output logic [ SIMD*OUT_BITS-1:0] m_axis_tdata,
    output logic                      m_axis_tlast
);
  localparam int CF = C / SIMD;  // beats a pixel
  localparam int RW = W * CF;  // words a row
  localparam int OH = (H + PT + PB - KH) / SH + 1;
  localparam int OW = (W + PL + PR - KW) / SW + 1;
  localparam int ROWS = pipeline_pkg::swu_rows(H, KH, SH);
  localparam int DEPTH = ROWS * RW;
  localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int RWW = RW > 1 ? $clog2(RW) : 1;
  localparam int SLW = ROWS > 1 ? $clog2(ROWS) : 1;
  localparam int FW = $clog2(ROWS + 1);
  localparam int CFW = CF > 1 ? $clog2(CF) : 1;
  localparam int KHW = KH > 1 ? $clog2(KH) : 1;
  localparam int KWW = KW > 1 ? $clog2(KW) : 1;
  localparam int OHW = OH > 1 ? $clog2(OH) : 1;
  localparam int OWW = OW > 1 ? $clog2(OW) : 1;
  // signed row / column coordinates: from -PT to H + SH, with a sign bit
  localparam int YW = $clog2(H + PT + KH + SH + 1) + 1;
  localparam int XW = $clog2(W + PL + KW + SW + 1) + 1;
  localparam int ROW_SPAN = KH > SH ? KH : SH;  // rows an output row needs before it moves on
  localparam int PIPE = 1;  // issue -> FIFO write: the memory read
  localparam int OUT_DEPTH = PIPE + 2;
  localparam int CRW = $clog2(OUT_DEPTH + 1);

  if (C % SIMD != 0 || OH < 1 || OW < 1 || (TERNARY_OUT && ELEM_BITS != 1)) begin : g_check
    $error("swu: SIMD must divide C, the window fit the padded frame, TERNARY_OUT take bits");
  end

  (* ram_style = "auto" *) logic [SIMD*ELEM_BITS-1:0] mem[DEPTH];

  // ---- writer --------------------------------------------------------------------------
  logic [RWW-1:0] wcol;
  logic [SLW-1:0] wslot;
  logic [FW-1:0] filled;
  wire push = s_axis_tvalid && s_axis_tready;
  wire row_written = push && wcol == RWW'(RW - 1);
  assign s_axis_tready = filled != FW'(ROWS);

  always_ff @(posedge clk) begin
    if (push) mem[AW'(int'(wslot) * RW + int'(wcol))] <= s_axis_tdata;
  end

  // ---- reader: counters of the tap being issued ------------------------------------------
  logic [CFW-1:0] cf;
  logic [KWW-1:0] kx;
  logic [KHW-1:0] ky;
  logic [OWW-1:0] ox;
  logic [OHW-1:0] oy;
  logic signed [YW-1:0] iy0;  // the window's top row: oy * SH - PT
  logic signed [XW-1:0] ix0;  // its left column: ox * SW - PL
  logic [SLW-1:0] lowslot;  // slot of the oldest row kept, row max(iy0, 0)
  logic [CRW-1:0] credits;
  logic out_pop;

  wire signed [YW-1:0] iy = iy0 + YW'(ky);
  wire signed [XW-1:0] ix = ix0 + XW'(kx);
  wire pad = iy < 0 || iy >= YW'(H) || ix < 0 || ix >= XW'(W);
  wire [YW-1:0] low = iy0 < 0 ? '0 : iy0;
  wire last_row = oy == OHW'(OH - 1);
  wire signed [YW-1:0] span_end = iy0 + YW'(ROW_SPAN);
  wire [YW-1:0] row_top = last_row || span_end > YW'(H) ? YW'(H) : span_end;
  wire [YW-1:0] need = row_top - low;  // complete rows this output row waits for
  wire signed [YW-1:0] next_iy0 = iy0 + YW'(SH);
  // rows freed after an output row: up to the next row's top, or the rest of the frame
  wire [FW-1:0] freed = FW'(last_row ? YW'(H) - low : (next_iy0 < 0 ? '0 : next_iy0) - low);

  wire window_end = cf == CFW'(CF - 1) && kx == KWW'(KW - 1) && ky == KHW'(KH - 1);
  wire row_end = window_end && ox == OWW'(OW - 1);
  wire frame_end = row_end && last_row;
  wire issue = YW'(filled) >= need && credits != '0;

  // the tap's slot in the ring: lowslot + (iy - low), modulo ROWS (meaningless when padded)
  wire [SLW:0] slot_sum = {1'b0, lowslot} + (SLW + 1)'(iy - low);
  wire [SLW-1:0] rslot = slot_sum >= (SLW + 1)'(ROWS) ? SLW'(slot_sum - (SLW + 1)'(ROWS))
                                                      : SLW'(slot_sum);
  wire [AW-1:0] raddr = AW'(int'(rslot) * RW + int'(ix) * CF + int'(cf));
  wire [SLW:0] lowslot_sum = {1'b0, lowslot} + (SLW + 1)'(freed);
  wire [SLW-1:0] next_lowslot = lowslot_sum >= (SLW + 1)'(ROWS) ?
      SLW'(lowslot_sum - (SLW + 1)'(ROWS)) : SLW'(lowslot_sum);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      wcol <= '0;
      wslot <= '0;
      filled <= '0;
      cf <= '0;
      kx <= '0;
      ky <= '0;
      ox <= '0;
      oy <= '0;
      iy0 <= -YW'(PT);
      ix0 <= -XW'(PL);
      lowslot <= '0;
      credits <= CRW'(OUT_DEPTH);
    end else begin
      if (push) begin
        wcol <= row_written ? '0 : wcol + 1'b1;
        if (row_written) wslot <= wslot == SLW'(ROWS - 1) ? '0 : wslot + 1'b1;
      end
      filled <= filled + FW'(row_written) - (issue && row_end ? freed : '0);
      if (issue) begin
        cf <= cf == CFW'(CF - 1) ? '0 : cf + 1'b1;
        if (cf == CFW'(CF - 1)) begin
          kx <= kx == KWW'(KW - 1) ? '0 : kx + 1'b1;
          if (kx == KWW'(KW - 1)) ky <= ky == KHW'(KH - 1) ? '0 : ky + 1'b1;
        end
        if (window_end) begin
          ox <= row_end ? '0 : ox + 1'b1;
          ix0 <= row_end ? -XW'(PL) : ix0 + XW'(SW);
        end
        if (row_end) begin
          oy <= last_row ? '0 : oy + 1'b1;
          iy0 <= last_row ? -YW'(PT) : next_iy0;
          lowslot <= next_lowslot;
        end
      end
      credits <= credits - CRW'(issue) + CRW'(out_pop);
    end
  end

  // ---- memory read, padding, output FIFO ----------------------------------------------
  logic [SIMD*ELEM_BITS-1:0] rdata;
  logic rvalid, rpad, rlast;
  always_ff @(posedge clk) begin
    rdata <= mem[raddr];
    rpad <= pad;
    rlast <= frame_end;
  end
  always_ff @(posedge clk) begin
    if (!rst_n) rvalid <= 1'b0;
    else rvalid <= issue;
  end

  logic [SIMD*OUT_BITS-1:0] tap;
  for (genvar s = 0; s < SIMD; s++) begin : g_lane
    if (TERNARY_OUT) begin : g_ternary
      assign tap[s*2+:2] = rpad ? 2'b00 : rdata[s] ? 2'b01 : 2'b11;
    end else begin : g_code
      assign tap[s*OUT_BITS+:OUT_BITS] = rpad ? OUT_BITS'(PAD_VALUE)
                                              : rdata[s*ELEM_BITS+:ELEM_BITS];
    end
  end

  logic out_ready;
  axis_fifo #(.WIDTH(SIMD * OUT_BITS), .DEPTH(OUT_DEPTH)) u_out (
      .clk, .rst_n,
      .s_axis_tvalid(rvalid), .s_axis_tready(out_ready), .s_axis_tdata(tap), .s_axis_tlast(rlast),
      .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
  assign out_pop = m_axis_tvalid && m_axis_tready;

`ifndef SYNTHESIS
  // the input frame is counted, not delimited by tlast: a tlast elsewhere is a framing bug
  localparam int FRAME_BEATS = H * RW;
  int in_beat;
  always_ff @(posedge clk) begin
    if (!rst_n) in_beat <= 0;
    else if (push) begin
      in_beat <= in_beat == FRAME_BEATS - 1 ? 0 : in_beat + 1;
      if (s_axis_tlast != (in_beat == FRAME_BEATS - 1))
        $error("swu: input tlast at beat %0d of a %0d-beat frame", in_beat, FRAME_BEATS);
    end
  end
  always_ff @(posedge clk) begin
    if (rst_n && rvalid && !out_ready) $error("swu: output FIFO overflow");
  end
`endif
endmodule

// Sliding-window unit: turns a channel-last frame (H, W, C), SIMD elements a beat (C/SIMD
// beats a pixel, raster order), into every output position's window in (kh, kw, c) order,
// KH*KW*C/SIMD beats a window, windows in raster order of the (OH, OW) outputs: the input
// vector of an MVAU computing a convolution, or of pool_reduce. Padded taps (explicit
// pads top, left, bottom, right) carry PAD_VALUE in every lane; with TERNARY_OUT a BIPOLAR
// input (1 bit, 1 = +1) leaves as 2-bit signed codes +1 / -1 and a padded tap as 0, so
// that the dot product behind it counts a padded tap as nothing (never as -1 or +1).
//
// The line buffer (one inferred memory, BRAM or LUT RAM by size) holds ROWS whole input
// rows (pipeline_pkg::swu_rows), a ring of row slots: row r of a frame sits in slot
// (frame's first slot + r) mod ROWS. `avail` counts the complete rows written past the
// oldest row the reader still needs, less those the current output row needs. The writer
// takes a beat while a slot is free; the reader starts an output row's taps only when
// every row that output row needs is complete (on the last output row: every remaining
// row of the frame, so a frame's unused bottom rows are consumed too), and frees the rows
// it is done with after each output row. ROWS leaves room for the writer to run ahead into
// the next rows and the next frame, so a reader-bound unit emits a beat every cycle across
// rows and frames.
//
// Timing: no multiply, modulo or comparison of computed coordinates sits before the
// memory. The reader keeps the tap's ring slot, column word (ix * CF + cf, modulo
// 2**AW, so that the left pad's negative columns count up into the row) and coordinates
// as registers stepped per beat, per kernel row, per window and per output row; the row
// bookkeeping (rows needed, freed) comes from per-output-row tables. A tap's address
// (slot * RW + column, a table and one adder) is registered before the read, and the read
// word again after it (an ECP5 DP16KD's clock-to-out alone is 5.8 ns; where QFLOW_ECP5 is
// defined, vendor/ecp5/ram_dp16kd.sv's blocks hold that register themselves): issue -> address
// register -> memory read -> read register -> axis_fifo, readable PIPE + 1 = 4 cycles
// after issue (flow/backends/rtl/window.py, SWU_LATENCY). Credits as in the MVAU: the
// reader issues only when the FIFO is sure to have room, and both tready and tvalid come
// from registers. tlast is set on the frame's last beat; the input's tlast is only
// checked (in simulation) to sit on each frame's last input beat.
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
  localparam int SLW = $clog2(ROWS);  // ROWS >= 2
  localparam int FW = $clog2(ROWS + 1);
  localparam int AVW = FW + 1;  // avail: -ROWS .. ROWS
  localparam int CFW = CF > 1 ? $clog2(CF) : 1;
  localparam int KHW = KH > 1 ? $clog2(KH) : 1;
  localparam int KWW = KW > 1 ? $clog2(KW) : 1;
  localparam int OHW = OH > 1 ? $clog2(OH) : 1;
  localparam int OWW = OW > 1 ? $clog2(OW) : 1;
  // signed row / column coordinates: from -PT to H + PB + SH, with a sign bit
  localparam int YW = $clog2(H + PT + PB + KH + SH + 1) + 1;
  localparam int XW = $clog2(W + PL + PR + KW + SW + 1) + 1;
  localparam int ROW_SPAN = KH > SH ? KH : SH;  // rows an output row needs before it moves on
  localparam int PIPE = 3;  // issue -> FIFO write: address register, memory read, read register
  localparam int OUT_DEPTH = PIPE + 2;
  localparam int CRW = $clog2(OUT_DEPTH + 1);

  if (C % SIMD != 0 || OH < 1 || OW < 1 || (TERNARY_OUT && ELEM_BITS != 1)) begin : g_check
    $error("swu: SIMD must divide C, the window fit the padded frame, TERNARY_OUT take bits");
  end

  // ---- elaboration-time tables --------------------------------------------------------
  function automatic int mod_rows(input int a);
    mod_rows = ((a % ROWS) + ROWS) % ROWS;
  endfunction
  // a row coordinate clamped into the frame: rows of padding (pads as wide as the kernel)
  // need and free no input row
  function automatic int in_frame(input int y);
    in_frame = y < 0 ? 0 : (y > H ? H : y);
  endfunction
  // complete rows output row oy waits for, counted from the oldest kept (its top, clamped),
  // and the rows it frees when done: up to the next row's top, or the rest of the frame
  function automatic int need_of(input int oy);
    int top;
    top = oy * SH - PT;
    need_of = (oy == OH - 1 ? H : in_frame(top + ROW_SPAN)) - in_frame(top);
  endfunction
  function automatic int freed_of(input int oy);
    int top;
    top = oy * SH - PT;
    freed_of = (oy == OH - 1 ? H : in_frame(top + SH)) - in_frame(top);
  endfunction

  // by slot s: the next slot, the next output row's top slot, the next frame's first and
  // top slots (from its first), and the slot's first word
  logic [ROWS-1:0][SLW-1:0] slot_step, slot_next_row, slot_next_frame, slot_frame_top;
  logic [ROWS-1:0][AW-1:0] slot_base;
  for (genvar s = 0; s < ROWS; s++) begin : g_slot
    assign slot_step[s] = SLW'(mod_rows(s + 1));
    assign slot_next_row[s] = SLW'(mod_rows(s + SH));
    assign slot_next_frame[s] = SLW'(mod_rows(s + H));
    assign slot_frame_top[s] = SLW'(mod_rows(s + H - PT));
    assign slot_base[s] = AW'(s * RW);
  end
  // avail's change at output row oy's end: what oy needed, less what it frees, less what
  // the next row needs
  function automatic int avail_step_of(input int oy);
    avail_step_of = need_of(oy) - freed_of(oy) - need_of((oy + 1) % OH);
  endfunction
  // by output row oy: the row after it's freed rows and avail step
  logic [OH-1:0][FW-1:0] freed_after;
  logic [OH-1:0][AVW-1:0] avail_step_after;
  for (genvar r = 0; r < OH; r++) begin : g_row
    assign freed_after[r] = FW'(freed_of((r + 1) % OH));
    assign avail_step_after[r] = AVW'(avail_step_of((r + 1) % OH));
  end

  // ---- writer: rows fill the ring's words in order ----------------------------------------
  logic [RWW-1:0] wcol;
  logic [AW-1:0] waddr;
  logic [FW-1:0] filled;  // complete rows past the oldest kept
  wire push = s_axis_tvalid && s_axis_tready;
  wire row_written = push && wcol == RWW'(RW - 1);
  assign s_axis_tready = filled != FW'(ROWS);

  // ---- reader: the tap being issued ---------------------------------------------------
  logic [CFW-1:0] cf;
  logic [KWW-1:0] kx;
  logic [KHW-1:0] ky;
  logic [OWW-1:0] ox;
  logic [OHW-1:0] oy;
  logic ox_last, oy_last;
  logic signed [YW-1:0] iy0, iy;  // the window's top row (oy * SH - PT), the tap's row
  logic signed [XW-1:0] ix0, ix;  // the window's left column (ox * SW - PL), the tap's
  logic [AW-1:0] col0, col;  // ix0 * CF, ix * CF + cf (modulo 2**AW)
  logic [SLW-1:0] fslot, tslot, rslot;  // slots of the frame's row 0, of iy0, of iy
  logic [FW-1:0] freed;  // rows freed at this output row's end
  logic [AVW-1:0] avail_step;  // avail's change there
  logic signed [AVW-1:0] avail;  // complete rows beyond what this output row needs
  logic [CRW-1:0] credits;
  logic out_pop;

  wire cf_last = cf == CFW'(CF - 1);
  wire kx_last = kx == KWW'(KW - 1);
  wire ky_last = ky == KHW'(KH - 1);
  wire tap_row_end = cf_last && kx_last;
  wire window_end = tap_row_end && ky_last;
  wire row_end = window_end && ox_last;
  wire frame_end = row_end && oy_last;
  wire issue = !avail[AVW-1] && credits != '0;
  wire pad = iy < 0 || iy >= YW'(H) || ix < 0 || ix >= XW'(W);

  wire signed [YW-1:0] next_iy0 = iy0 + YW'(SH);
  wire signed [XW-1:0] next_ix0 = ix0 + XW'(SW);
  wire [AW-1:0] next_col0 = col0 + AW'(SW * CF);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      wcol <= '0;
      waddr <= '0;
      filled <= '0;
      cf <= '0;
      kx <= '0;
      ky <= '0;
      ox <= '0;
      oy <= '0;
      ox_last <= OW == 1;
      oy_last <= OH == 1;
      iy0 <= -YW'(PT);
      iy <= -YW'(PT);
      ix0 <= -XW'(PL);
      ix <= -XW'(PL);
      col0 <= -AW'(PL * CF);
      col <= -AW'(PL * CF);
      fslot <= '0;
      tslot <= SLW'(mod_rows(-PT));
      rslot <= SLW'(mod_rows(-PT));
      freed <= FW'(freed_of(0));
      avail_step <= AVW'(avail_step_of(0));
      avail <= -AVW'(need_of(0));
      credits <= CRW'(OUT_DEPTH);
    end else begin
      if (push) begin
        wcol <= row_written ? '0 : wcol + 1'b1;
        waddr <= waddr == AW'(DEPTH - 1) ? '0 : waddr + 1'b1;
      end
      filled <= filled + FW'(row_written) - (issue && row_end ? freed : '0);
      avail <= avail + AVW'(row_written) + (issue && row_end ? avail_step : '0);
      if (issue) begin
        cf <= cf_last ? '0 : cf + 1'b1;
        if (cf_last) kx <= kx_last ? '0 : kx + 1'b1;
        if (tap_row_end) ky <= ky_last ? '0 : ky + 1'b1;
        if (window_end) begin
          ox <= ox_last ? '0 : ox + 1'b1;
          ox_last <= OW == 1 || (!ox_last && ox == OWW'(OW - 2));
        end
        if (row_end) begin
          oy <= oy_last ? '0 : oy + 1'b1;
          oy_last <= OH == 1 || (!oy_last && oy == OHW'(OH - 2));
          freed <= freed_after[oy];
          avail_step <= avail_step_after[oy];
        end
        // the tap's coordinates, column word and slot, one level at a time
        if (frame_end) begin
          iy0 <= -YW'(PT);
          iy <= -YW'(PT);
          fslot <= slot_next_frame[fslot];
          tslot <= slot_frame_top[fslot];
          rslot <= slot_frame_top[fslot];
        end else if (row_end) begin
          iy0 <= next_iy0;
          iy <= next_iy0;
          tslot <= slot_next_row[tslot];
          rslot <= slot_next_row[tslot];
        end else if (window_end) begin
          iy <= iy0;
          rslot <= tslot;
        end else if (tap_row_end) begin
          iy <= iy + 1'b1;
          rslot <= slot_step[rslot];
        end
        if (row_end) begin
          ix0 <= -XW'(PL);
          ix <= -XW'(PL);
          col0 <= -AW'(PL * CF);
          col <= -AW'(PL * CF);
        end else if (window_end) begin
          ix0 <= next_ix0;
          ix <= next_ix0;
          col0 <= next_col0;
          col <= next_col0;
        end else if (tap_row_end) begin
          ix <= ix0;
          col <= col0;
        end else begin
          if (cf_last) ix <= ix + 1'b1;
          col <= col + 1'b1;
        end
      end
      credits <= credits - CRW'(issue) + CRW'(out_pop);
    end
  end

  // ---- address register, memory read, read register, output FIFO ------------------------
  // side_q[k], valid_q[k]: {tlast, padded} and valid of the tap issued k cycles ago
  logic [PIPE:1][1:0] side_q;
  logic [PIPE:1] valid_q;
  always_ff @(posedge clk) side_q <= {side_q[PIPE-1:1], {frame_end, pad}};
  always_ff @(posedge clk) begin
    if (!rst_n) valid_q <= '0;
    else valid_q <= {valid_q[PIPE-1:1], issue};
  end

  logic [AW-1:0] raddr;  // the tap's word (meaningless when padded)
  always_ff @(posedge clk) raddr <= slot_base[rslot] + col;

  // the line buffer: the word at raddr in rdata_q 2 cycles later
  logic [SIMD*ELEM_BITS-1:0] rdata_q;
`ifdef QFLOW_ECP5
  ram_dp16kd #(.WIDTH(SIMD * ELEM_BITS), .DEPTH(DEPTH)) u_buffer (
      .clk, .we(push), .waddr, .wdata(s_axis_tdata), .raddr, .rdata(rdata_q));
`else
  // reads never meet writes (the reader reads complete rows only): no collision logic
  (* ram_style = "auto", no_rw_check *) logic [SIMD*ELEM_BITS-1:0] mem[DEPTH];
  logic [SIMD*ELEM_BITS-1:0] rdata;
  always_ff @(posedge clk) begin
    if (push) mem[waddr] <= s_axis_tdata;
    rdata <= mem[raddr];
    rdata_q <= rdata;
  end
`endif

  wire rpad = side_q[PIPE][0];
  logic [SIMD*OUT_BITS-1:0] tap;
  for (genvar s = 0; s < SIMD; s++) begin : g_lane
    if (TERNARY_OUT) begin : g_ternary
      assign tap[s*2+:2] = rpad ? 2'b00 : rdata_q[s] ? 2'b01 : 2'b11;
    end else begin : g_code
      assign tap[s*OUT_BITS+:OUT_BITS] = rpad ? OUT_BITS'(PAD_VALUE)
                                              : rdata_q[s*ELEM_BITS+:ELEM_BITS];
    end
  end

  logic out_ready;
  axis_fifo #(.WIDTH(SIMD * OUT_BITS), .DEPTH(OUT_DEPTH)) u_out (
      .clk, .rst_n,
      .s_axis_tvalid(valid_q[PIPE]), .s_axis_tready(out_ready), .s_axis_tdata(tap),
      .s_axis_tlast(side_q[PIPE][1]),
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
    if (rst_n && valid_q[PIPE] && !out_ready) $error("swu: output FIFO overflow");
  end
`endif
endmodule

// swu.sv's line buffer on ECP5 (Yosys synth_ecp5 with QFLOW_ECP5 defined): a simple
// dual-port RAM, one write and one read a cycle, the word read leaving a register 2
// cycles after its address, as the inferred path (array read, then a register). From 65 to
// 512 words: DP16KD blocks instantiated directly in their 36-bit pseudo dual-port mode
// (port A writes, port B reads; the pins as Yosys maps a 512 x 36 memory), their output
// registers on (REGMODE OUTREG), so that the array's 5.8 ns clock-to-out stays inside the
// block; Yosys' own mapping (brams_map_16kd.v) always leaves that register off. Shallower
// buffers stay inferred (LUT RAM, as the generator keeps ROMs of up to 64 words in LUTs:
// flow/backends/rtl/pipeline.py LOGIC_ROM_DEPTH), deeper ones too. Reads never meet writes
// here (the swu reads complete rows only), so no collision logic.
module ram_dp16kd #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4,
    localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             we,
    input  logic [   AW-1:0] waddr,
    input  logic [WIDTH-1:0] wdata,
    input  logic [   AW-1:0] raddr,
    output logic [WIDTH-1:0] rdata
);
  if (DEPTH > 64 && DEPTH <= 512) begin : g_blocks
    localparam int COLS = (WIDTH + 35) / 36;
    logic [COLS*36-1:0] di;
    // verilator lint_off UNUSEDSIGNAL
    logic [COLS*36-1:0] do_;  // the last column's spare bits are never read
    // verilator lint_on UNUSEDSIGNAL
    assign di = (COLS * 36)'(wdata);
    assign rdata = do_[WIDTH-1:0];
    // the 36-bit word's address on AD[13:5]; a write's byte enables on port A's AD[3:0]
    logic [13:0] ad_w, ad_r;
    assign ad_w = 14'(waddr) << 5 | 14'hf;
    assign ad_r = 14'(raddr) << 5;
    for (genvar c = 0; c < COLS; c++) begin : g_col
      wire [35:0] d = di[c*36+:36];
      wire [35:0] q;
      assign do_[c*36+:36] = q;
      DP16KD #(
          .DATA_WIDTH_A(36), .DATA_WIDTH_B(36), .REGMODE_A("OUTREG"), .REGMODE_B("OUTREG"),
          .RESETMODE("SYNC"), .ASYNC_RESET_RELEASE("SYNC"), .CSDECODE_A("0b000"),
          .CSDECODE_B("0b000"), .WRITEMODE_A("NORMAL"), .WRITEMODE_B("NORMAL"),
          .GSR("DISABLED")
      ) u_dp16kd (
          .CLKA(clk), .CEA(we), .OCEA(1'b1), .WEA(1'b1), .RSTA(1'b0),
          .CSA2(1'b0), .CSA1(1'b0), .CSA0(1'b0),
          .ADA13(ad_w[13]), .ADA12(ad_w[12]), .ADA11(ad_w[11]), .ADA10(ad_w[10]),
          .ADA9(ad_w[9]), .ADA8(ad_w[8]), .ADA7(ad_w[7]), .ADA6(ad_w[6]), .ADA5(ad_w[5]),
          .ADA4(ad_w[4]), .ADA3(ad_w[3]), .ADA2(ad_w[2]), .ADA1(ad_w[1]), .ADA0(ad_w[0]),
          .DIA17(d[17]), .DIA16(d[16]), .DIA15(d[15]), .DIA14(d[14]), .DIA13(d[13]),
          .DIA12(d[12]), .DIA11(d[11]), .DIA10(d[10]), .DIA9(d[9]), .DIA8(d[8]),
          .DIA7(d[7]), .DIA6(d[6]), .DIA5(d[5]), .DIA4(d[4]), .DIA3(d[3]), .DIA2(d[2]),
          .DIA1(d[1]), .DIA0(d[0]),
          .DOA17(q[17]), .DOA16(q[16]), .DOA15(q[15]), .DOA14(q[14]), .DOA13(q[13]),
          .DOA12(q[12]), .DOA11(q[11]), .DOA10(q[10]), .DOA9(q[9]), .DOA8(q[8]),
          .DOA7(q[7]), .DOA6(q[6]), .DOA5(q[5]), .DOA4(q[4]), .DOA3(q[3]), .DOA2(q[2]),
          .DOA1(q[1]), .DOA0(q[0]),
          .CLKB(clk), .CEB(1'b1), .OCEB(1'b1), .WEB(1'b0), .RSTB(1'b0),
          .CSB2(1'b0), .CSB1(1'b0), .CSB0(1'b0),
          .ADB13(ad_r[13]), .ADB12(ad_r[12]), .ADB11(ad_r[11]), .ADB10(ad_r[10]),
          .ADB9(ad_r[9]), .ADB8(ad_r[8]), .ADB7(ad_r[7]), .ADB6(ad_r[6]), .ADB5(ad_r[5]),
          .ADB4(ad_r[4]), .ADB3(ad_r[3]), .ADB2(ad_r[2]), .ADB1(ad_r[1]), .ADB0(ad_r[0]),
          .DIB17(d[35]), .DIB16(d[34]), .DIB15(d[33]), .DIB14(d[32]), .DIB13(d[31]),
          .DIB12(d[30]), .DIB11(d[29]), .DIB10(d[28]), .DIB9(d[27]), .DIB8(d[26]),
          .DIB7(d[25]), .DIB6(d[24]), .DIB5(d[23]), .DIB4(d[22]), .DIB3(d[21]),
          .DIB2(d[20]), .DIB1(d[19]), .DIB0(d[18]),
          .DOB17(q[35]), .DOB16(q[34]), .DOB15(q[33]), .DOB14(q[32]), .DOB13(q[31]),
          .DOB12(q[30]), .DOB11(q[29]), .DOB10(q[28]), .DOB9(q[27]), .DOB8(q[26]),
          .DOB7(q[25]), .DOB6(q[24]), .DOB5(q[23]), .DOB4(q[22]), .DOB3(q[21]),
          .DOB2(q[20]), .DOB1(q[19]), .DOB0(q[18])
      );
    end
  end else begin : g_inferred
    (* ram_style = "auto", no_rw_check *) logic [WIDTH-1:0] mem[DEPTH];
    logic [WIDTH-1:0] q;
    always_ff @(posedge clk) begin
      if (we) mem[waddr] <= wdata;
      q <= mem[raddr];
      rdata <= q;
    end
  end
endmodule

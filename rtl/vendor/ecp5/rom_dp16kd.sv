// rom.sv's STYLE "block" on ECP5 (Yosys synth_ecp5 with QFLOW_ECP5 defined): DP16KD
// block RAMs instantiated directly, their output registers on (REGMODE OUTREG), so that
// the word leaves a register 2 cycles after its address (pipeline_pkg::rom_latency(), as
// the inferred path) and the array's 5.8 ns clock-to-out stays inside the block. Yosys'
// own mapping (brams_map_16kd.v) always leaves that register off.
//
// A block holds 1024 rows of 18 bits, read PORT_WIDTH (4, 9 or 18) bits a word, 4096, 2048
// or 1024 words deep. The ROM is cut into columns of PORT_WIDTH bits. A ROM no
// deeper than half a block puts two columns in each block, port A reading the lower half
// and port B the upper; a deeper one stacks ROWS blocks per column on port A, the word of
// the row the address named selected two cycles later. The generator chooses PORT_WIDTH
// and writes the blocks' INITVAL from the ROM's $readmemh image into the package
// rom_dp16kd_init (flow/backends/rtl/dp16kd.py), keyed by MEM_FILE.
module rom_dp16kd #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4,
    parameter MEM_FILE = ""
) (
    input  logic                                    clk,
    input  logic [(DEPTH > 1 ? $clog2(DEPTH) : 1)-1:0] addr,
    output logic [WIDTH-1:0]                        data
);
  localparam int KEY_BITS = rom_dp16kd_init::PATH_BITS;
  localparam logic [KEY_BITS-1:0] KEY = KEY_BITS'(MEM_FILE);  // the package's key
  localparam int PORT_WIDTH = rom_dp16kd_init::port_width(KEY);
  localparam int PORT_ABITS = PORT_WIDTH == 4 ? 12 : PORT_WIDTH == 9 ? 11 : 10;
  localparam int PORT_DEPTH = 1 << PORT_ABITS;
  localparam bit PAIRED = DEPTH <= PORT_DEPTH / 2;
  localparam int COLS = (WIDTH + PORT_WIDTH - 1) / PORT_WIDTH;
  localparam int ROWS = (DEPTH + PORT_DEPTH - 1) / PORT_DEPTH;
  localparam int BLOCKS_PER_ROW = PAIRED ? (COLS + 1) / 2 : COLS;
  localparam int AW = $bits(addr);
  localparam int LOCAL_BITS = AW < PORT_ABITS ? AW : PORT_ABITS;

  if (PORT_WIDTH != 4 && PORT_WIDTH != 9 && PORT_WIDTH != 18) begin : g_no_init
    $error("rom_dp16kd: no DP16KD contents for MEM_FILE %s in rom_dp16kd_init", MEM_FILE);
  end

  // the word's address within a block on the pins AD[13 -: PORT_ABITS] (AD[1:0] are byte
  // enables at 18 bits, unused in a read); port B's top pin picks the upper half
  logic [13:0] ad_a, ad_b;
  assign ad_a = 14'(addr[LOCAL_BITS-1:0]) << (14 - PORT_ABITS);
  assign ad_b = ad_a | 14'(PAIRED) << 13;

  // every row's columns, row r at r * COLS (the last column's bits above WIDTH unused)
  // verilator lint_off UNUSEDSIGNAL
  logic [ROWS*COLS*PORT_WIDTH-1:0] words;
  // verilator lint_on UNUSEDSIGNAL

  for (genvar r = 0; r < ROWS; r++) begin : g_row
    for (genvar b = 0; b < BLOCKS_PER_ROW; b++) begin : g_block
      localparam logic [20479:0] INIT = rom_dp16kd_init::block(KEY, r, b);
      localparam int COL_A = PAIRED ? 2 * b : b;
      localparam bit HAS_B = PAIRED && 2 * b + 1 < COLS;
      // verilator lint_off UNUSEDSIGNAL
      logic [17:0] doa, dob;  // a port's bits above PORT_WIDTH; port B of an unpaired block
      // verilator lint_on UNUSEDSIGNAL
      DP16KD #(
          .DATA_WIDTH_A(PORT_WIDTH), .DATA_WIDTH_B(PORT_WIDTH),
          .REGMODE_A("OUTREG"), .REGMODE_B("OUTREG"), .RESETMODE("SYNC"),
          .ASYNC_RESET_RELEASE("SYNC"), .CSDECODE_A("0b000"), .CSDECODE_B("0b000"),
          .WRITEMODE_A("NORMAL"), .WRITEMODE_B("NORMAL"), .GSR("DISABLED"),
          .INITVAL_00(INIT[0*320+:320]), .INITVAL_01(INIT[1*320+:320]),
          .INITVAL_02(INIT[2*320+:320]), .INITVAL_03(INIT[3*320+:320]),
          .INITVAL_04(INIT[4*320+:320]), .INITVAL_05(INIT[5*320+:320]),
          .INITVAL_06(INIT[6*320+:320]), .INITVAL_07(INIT[7*320+:320]),
          .INITVAL_08(INIT[8*320+:320]), .INITVAL_09(INIT[9*320+:320]),
          .INITVAL_0A(INIT[10*320+:320]), .INITVAL_0B(INIT[11*320+:320]),
          .INITVAL_0C(INIT[12*320+:320]), .INITVAL_0D(INIT[13*320+:320]),
          .INITVAL_0E(INIT[14*320+:320]), .INITVAL_0F(INIT[15*320+:320]),
          .INITVAL_10(INIT[16*320+:320]), .INITVAL_11(INIT[17*320+:320]),
          .INITVAL_12(INIT[18*320+:320]), .INITVAL_13(INIT[19*320+:320]),
          .INITVAL_14(INIT[20*320+:320]), .INITVAL_15(INIT[21*320+:320]),
          .INITVAL_16(INIT[22*320+:320]), .INITVAL_17(INIT[23*320+:320]),
          .INITVAL_18(INIT[24*320+:320]), .INITVAL_19(INIT[25*320+:320]),
          .INITVAL_1A(INIT[26*320+:320]), .INITVAL_1B(INIT[27*320+:320]),
          .INITVAL_1C(INIT[28*320+:320]), .INITVAL_1D(INIT[29*320+:320]),
          .INITVAL_1E(INIT[30*320+:320]), .INITVAL_1F(INIT[31*320+:320]),
          .INITVAL_20(INIT[32*320+:320]), .INITVAL_21(INIT[33*320+:320]),
          .INITVAL_22(INIT[34*320+:320]), .INITVAL_23(INIT[35*320+:320]),
          .INITVAL_24(INIT[36*320+:320]), .INITVAL_25(INIT[37*320+:320]),
          .INITVAL_26(INIT[38*320+:320]), .INITVAL_27(INIT[39*320+:320]),
          .INITVAL_28(INIT[40*320+:320]), .INITVAL_29(INIT[41*320+:320]),
          .INITVAL_2A(INIT[42*320+:320]), .INITVAL_2B(INIT[43*320+:320]),
          .INITVAL_2C(INIT[44*320+:320]), .INITVAL_2D(INIT[45*320+:320]),
          .INITVAL_2E(INIT[46*320+:320]), .INITVAL_2F(INIT[47*320+:320]),
          .INITVAL_30(INIT[48*320+:320]), .INITVAL_31(INIT[49*320+:320]),
          .INITVAL_32(INIT[50*320+:320]), .INITVAL_33(INIT[51*320+:320]),
          .INITVAL_34(INIT[52*320+:320]), .INITVAL_35(INIT[53*320+:320]),
          .INITVAL_36(INIT[54*320+:320]), .INITVAL_37(INIT[55*320+:320]),
          .INITVAL_38(INIT[56*320+:320]), .INITVAL_39(INIT[57*320+:320]),
          .INITVAL_3A(INIT[58*320+:320]), .INITVAL_3B(INIT[59*320+:320]),
          .INITVAL_3C(INIT[60*320+:320]), .INITVAL_3D(INIT[61*320+:320]),
          .INITVAL_3E(INIT[62*320+:320]), .INITVAL_3F(INIT[63*320+:320])
      ) u_dp16kd (
          .CLKA(clk), .CEA(1'b1), .OCEA(1'b1), .WEA(1'b0), .RSTA(1'b0),
          .CSA2(1'b0), .CSA1(1'b0), .CSA0(1'b0),
          .ADA13(ad_a[13]), .ADA12(ad_a[12]), .ADA11(ad_a[11]), .ADA10(ad_a[10]),
          .ADA9(ad_a[9]), .ADA8(ad_a[8]), .ADA7(ad_a[7]), .ADA6(ad_a[6]), .ADA5(ad_a[5]),
          .ADA4(ad_a[4]), .ADA3(ad_a[3]), .ADA2(ad_a[2]), .ADA1(ad_a[1]), .ADA0(ad_a[0]),
          .DIA17(1'b0), .DIA16(1'b0), .DIA15(1'b0), .DIA14(1'b0), .DIA13(1'b0), .DIA12(1'b0),
          .DIA11(1'b0), .DIA10(1'b0), .DIA9(1'b0), .DIA8(1'b0), .DIA7(1'b0), .DIA6(1'b0),
          .DIA5(1'b0), .DIA4(1'b0), .DIA3(1'b0), .DIA2(1'b0), .DIA1(1'b0), .DIA0(1'b0),
          .DOA17(doa[17]), .DOA16(doa[16]), .DOA15(doa[15]), .DOA14(doa[14]),
          .DOA13(doa[13]), .DOA12(doa[12]), .DOA11(doa[11]), .DOA10(doa[10]), .DOA9(doa[9]),
          .DOA8(doa[8]), .DOA7(doa[7]), .DOA6(doa[6]), .DOA5(doa[5]), .DOA4(doa[4]),
          .DOA3(doa[3]), .DOA2(doa[2]), .DOA1(doa[1]), .DOA0(doa[0]),
          .CLKB(clk), .CEB(HAS_B), .OCEB(HAS_B), .WEB(1'b0), .RSTB(1'b0),
          .CSB2(1'b0), .CSB1(1'b0), .CSB0(1'b0),
          .ADB13(ad_b[13]), .ADB12(ad_b[12]), .ADB11(ad_b[11]), .ADB10(ad_b[10]),
          .ADB9(ad_b[9]), .ADB8(ad_b[8]), .ADB7(ad_b[7]), .ADB6(ad_b[6]), .ADB5(ad_b[5]),
          .ADB4(ad_b[4]), .ADB3(ad_b[3]), .ADB2(ad_b[2]), .ADB1(ad_b[1]), .ADB0(ad_b[0]),
          .DIB17(1'b0), .DIB16(1'b0), .DIB15(1'b0), .DIB14(1'b0), .DIB13(1'b0), .DIB12(1'b0),
          .DIB11(1'b0), .DIB10(1'b0), .DIB9(1'b0), .DIB8(1'b0), .DIB7(1'b0), .DIB6(1'b0),
          .DIB5(1'b0), .DIB4(1'b0), .DIB3(1'b0), .DIB2(1'b0), .DIB1(1'b0), .DIB0(1'b0),
          .DOB17(dob[17]), .DOB16(dob[16]), .DOB15(dob[15]), .DOB14(dob[14]),
          .DOB13(dob[13]), .DOB12(dob[12]), .DOB11(dob[11]), .DOB10(dob[10]), .DOB9(dob[9]),
          .DOB8(dob[8]), .DOB7(dob[7]), .DOB6(dob[6]), .DOB5(dob[5]), .DOB4(dob[4]),
          .DOB3(dob[3]), .DOB2(dob[2]), .DOB1(dob[1]), .DOB0(dob[0])
      );
      assign words[(r * COLS + COL_A) * PORT_WIDTH +: PORT_WIDTH] = doa[PORT_WIDTH-1:0];
      if (HAS_B) begin : g_port_b
        assign words[(r * COLS + COL_A + 1) * PORT_WIDTH +: PORT_WIDTH] = dob[PORT_WIDTH-1:0];
      end
    end
  end

  if (ROWS == 1) begin : g_one_row
    assign data = words[WIDTH-1:0];
  end else begin : g_rows  // the row the address named, when its word leaves the blocks
    logic [AW-PORT_ABITS-1:0] row_q[2];
    always_ff @(posedge clk) begin
      row_q[0] <= addr[AW-1:PORT_ABITS];
      row_q[1] <= row_q[0];
    end
    assign data = words[row_q[1] * COLS * PORT_WIDTH +: WIDTH];
  end
endmodule

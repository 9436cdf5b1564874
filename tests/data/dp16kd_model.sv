// A behavioural ECP5 DP16KD for simulating rtl/vendor/ecp5/rom_dp16kd.sv and ram_dp16kd.sv, from
// Lattice's description of the EBR: an array of 1024 rows of 18 bits, INITVAL_xx holding
// rows 16 xx .. 16 xx + 15 in 20-bit fields; a port of DATA_WIDTH bits addresses words by
// AD[13 -: address bits], word a starting at array bit a * DATA_WIDTH (+ a / 2 at 4 bits,
// where a 9-bit byte holds two words); with CE the word is read at the clock edge, and with
// REGMODE "OUTREG" it leaves through a register clocked with OCE one edge later. Writes
// only in the 36-bit pseudo dual-port mode (both DATA_WIDTHs 36, as Yosys maps a 512 x 36
// simple dual-port memory): port A writes {DIB, DIA} with CEA and WEA, its 9-bit bytes
// enabled by ADA[3:0]; port B reads, the word leaving on {DOB, DOA}.
// verilator lint_off UNUSEDSIGNAL
// verilator lint_off UNUSEDPARAM
// verilator lint_off DECLFILENAME
// verilator lint_off WIDTHEXPAND
module DP16KD #(
    parameter int DATA_WIDTH_A = 18,
    parameter int DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG",
    parameter REGMODE_B = "NOREG",
    parameter RESETMODE = "SYNC",
    parameter ASYNC_RESET_RELEASE = "SYNC",
    parameter CSDECODE_A = "0b000",
    parameter CSDECODE_B = "0b000",
    parameter WRITEMODE_A = "NORMAL",
    parameter WRITEMODE_B = "NORMAL",
    parameter GSR = "ENABLED",
    parameter logic [319:0] INITVAL_00 = '0,
    parameter logic [319:0] INITVAL_01 = '0,
    parameter logic [319:0] INITVAL_02 = '0,
    parameter logic [319:0] INITVAL_03 = '0,
    parameter logic [319:0] INITVAL_04 = '0,
    parameter logic [319:0] INITVAL_05 = '0,
    parameter logic [319:0] INITVAL_06 = '0,
    parameter logic [319:0] INITVAL_07 = '0,
    parameter logic [319:0] INITVAL_08 = '0,
    parameter logic [319:0] INITVAL_09 = '0,
    parameter logic [319:0] INITVAL_0A = '0,
    parameter logic [319:0] INITVAL_0B = '0,
    parameter logic [319:0] INITVAL_0C = '0,
    parameter logic [319:0] INITVAL_0D = '0,
    parameter logic [319:0] INITVAL_0E = '0,
    parameter logic [319:0] INITVAL_0F = '0,
    parameter logic [319:0] INITVAL_10 = '0,
    parameter logic [319:0] INITVAL_11 = '0,
    parameter logic [319:0] INITVAL_12 = '0,
    parameter logic [319:0] INITVAL_13 = '0,
    parameter logic [319:0] INITVAL_14 = '0,
    parameter logic [319:0] INITVAL_15 = '0,
    parameter logic [319:0] INITVAL_16 = '0,
    parameter logic [319:0] INITVAL_17 = '0,
    parameter logic [319:0] INITVAL_18 = '0,
    parameter logic [319:0] INITVAL_19 = '0,
    parameter logic [319:0] INITVAL_1A = '0,
    parameter logic [319:0] INITVAL_1B = '0,
    parameter logic [319:0] INITVAL_1C = '0,
    parameter logic [319:0] INITVAL_1D = '0,
    parameter logic [319:0] INITVAL_1E = '0,
    parameter logic [319:0] INITVAL_1F = '0,
    parameter logic [319:0] INITVAL_20 = '0,
    parameter logic [319:0] INITVAL_21 = '0,
    parameter logic [319:0] INITVAL_22 = '0,
    parameter logic [319:0] INITVAL_23 = '0,
    parameter logic [319:0] INITVAL_24 = '0,
    parameter logic [319:0] INITVAL_25 = '0,
    parameter logic [319:0] INITVAL_26 = '0,
    parameter logic [319:0] INITVAL_27 = '0,
    parameter logic [319:0] INITVAL_28 = '0,
    parameter logic [319:0] INITVAL_29 = '0,
    parameter logic [319:0] INITVAL_2A = '0,
    parameter logic [319:0] INITVAL_2B = '0,
    parameter logic [319:0] INITVAL_2C = '0,
    parameter logic [319:0] INITVAL_2D = '0,
    parameter logic [319:0] INITVAL_2E = '0,
    parameter logic [319:0] INITVAL_2F = '0,
    parameter logic [319:0] INITVAL_30 = '0,
    parameter logic [319:0] INITVAL_31 = '0,
    parameter logic [319:0] INITVAL_32 = '0,
    parameter logic [319:0] INITVAL_33 = '0,
    parameter logic [319:0] INITVAL_34 = '0,
    parameter logic [319:0] INITVAL_35 = '0,
    parameter logic [319:0] INITVAL_36 = '0,
    parameter logic [319:0] INITVAL_37 = '0,
    parameter logic [319:0] INITVAL_38 = '0,
    parameter logic [319:0] INITVAL_39 = '0,
    parameter logic [319:0] INITVAL_3A = '0,
    parameter logic [319:0] INITVAL_3B = '0,
    parameter logic [319:0] INITVAL_3C = '0,
    parameter logic [319:0] INITVAL_3D = '0,
    parameter logic [319:0] INITVAL_3E = '0,
    parameter logic [319:0] INITVAL_3F = '0,
    parameter INIT_DATA = "STATIC"
) (
    input logic DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input logic ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input logic CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output logic DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input logic DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input logic ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input logic CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output logic DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  localparam logic [20479:0] INIT = {INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38, INITVAL_37, INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30, INITVAL_2F, INITVAL_2E, INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28, INITVAL_27, INITVAL_26, INITVAL_25, INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20, INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C, INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18, INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13, INITVAL_12, INITVAL_11, INITVAL_10, INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A, INITVAL_09, INITVAL_08, INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01, INITVAL_00};
  logic [18431:0] array;
  initial for (int r = 0; r < 1024; r++) array[r * 18 +: 18] = INIT[r * 20 +: 18];

  localparam bit PDP36 = DATA_WIDTH_A == 36 && DATA_WIDTH_B == 36;

  function automatic logic [35:0] read(input int width, input logic [13:0] ad);
    int abits, a, first;
    abits = width == 4 ? 12 : width == 9 ? 11 : width == 18 ? 10 : width == 36 ? 9 : -1;
    if (abits < 0) $fatal(1, "DP16KD model: DATA_WIDTH %0d not modelled", width);
    a = int'(ad) >> (14 - abits);
    first = a * width + (width == 4 ? a / 2 : 0);
    read = '0;
    for (int i = 0; i < width; i++) read[i] = array[first + i];
  endfunction

  wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  wire [35:0] di = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
                    DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  if (DATA_WIDTH_A == 36 || DATA_WIDTH_B == 36) begin : g_pdp
    if (!PDP36) begin : g_refuse
      $fatal(1, "DP16KD model: 36 bits only as pseudo dual port (both widths 36)");
    end
  end

  logic [35:0] word_a, word_b, reg_a, reg_b, doa, dob;
  always_ff @(posedge CLKA) begin
    if (PDP36) begin
      if (CEA && WEA)
        for (int b = 0; b < 4; b++) if (ada[b]) array[int'(ada[13:5]) * 36 + b * 9 +: 9] <= di[b*9+:9];
    end else begin
      if (CEA) word_a <= read(DATA_WIDTH_A, ada);
      if (OCEA) reg_a <= word_a;
    end
  end
  always_ff @(posedge CLKB) begin
    if (CEB) word_b <= read(DATA_WIDTH_B, adb);
    if (OCEB) reg_b <= word_b;
  end
  assign doa = PDP36 ? dob : REGMODE_A == "OUTREG" ? reg_a : word_a;
  assign dob = REGMODE_B == "OUTREG" ? reg_b : word_b;
  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa[17:0];
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = PDP36 ? dob[35:18] : dob[17:0];
endmodule

// The activation of an MVAU or VVAU: per PE, the fold's accumulators to output codes by
// N_THRES thresholds (mvau_thresholds.sv), by a requantization (REQUANT, requant.sv), or,
// with neither, the accumulators themselves. The fold's parameters come from a ROM word
// read at `addr`, which the caller presents pipeline_pkg::rom_latency() cycles before
// `acc`; the codes leave activation_latency(N_THRES, REQUANT) cycles after `acc`.
module activation #(
    parameter int PE = 2,
    parameter int FOLDS = 4,  // ROM words: output channels / PE
    parameter int ACC_BITS = 8,
    parameter int N_THRES = 1,  // 0: requantization (REQUANT) or accumulators out
    parameter int OUT_BITS = 1,
    parameter int OUT_BASE = 0,
    parameter int OUT_STEP = 1,
    parameter THRESHOLDS_FILE = "",  // word f: T[f*PE+p][j] at (p*N_THRES+j)*(ACC_BITS+1)
    parameter THRESHOLDS_STYLE = "logic",
    // requantization (requant.sv's parameters, RQ_ for its own); word f of REQUANT_FILE:
    // the PE biases, multipliers, left shifts (tflite only), right shifts of channels
    // f*PE.., each a PE-field group in that order from bit 0
    parameter bit REQUANT = 1'b0,
    parameter int RQ_BIAS_BITS = 1,
    parameter bit RQ_HALF_EVEN = 1'b0,
    parameter int RQ_PRODUCT_BITS = ACC_BITS + 31,
    parameter int RQ_SUM_BITS = ACC_BITS,
    parameter int RQ_LSH_MAX = 0,
    parameter int RQ_RSH_MAX = 0,
    parameter int RQ_RSH_MIN = 1,
    parameter int RQ_ZERO_POINT = 0,
    parameter int RQ_CLAMP_MIN = 0,
    parameter int RQ_CLAMP_MAX = 0,
    parameter REQUANT_FILE = "",
    parameter REQUANT_STYLE = "logic",
    localparam int AW = FOLDS > 1 ? $clog2(FOLDS) : 1,
    localparam int Y_BITS = N_THRES > 0 || REQUANT ? OUT_BITS : ACC_BITS
) (
    input  logic                   clk,
    input  logic [         AW-1:0] addr,
    input  logic [PE*ACC_BITS-1:0] acc,
    output logic [  PE*Y_BITS-1:0] y
);
  localparam int THR_BITS = ACC_BITS + 1;

  if (N_THRES > 0 && REQUANT) begin : g_check
    $error("activation: thresholds (N_THRES > 0) or REQUANT, not both");
  end

  if (N_THRES > 0) begin : g_thresholds
    logic [PE*N_THRES*THR_BITS-1:0] thresholds;
    rom #(.WIDTH(PE * N_THRES * THR_BITS), .DEPTH(FOLDS), .MEM_FILE(THRESHOLDS_FILE),
          .STYLE(THRESHOLDS_STYLE)) u_thresholds (.clk, .addr, .data(thresholds));
    mvau_thresholds #(
        .PE(PE), .ACC_BITS(ACC_BITS), .N_THRES(N_THRES),
        .OUT_BITS(OUT_BITS), .OUT_BASE(OUT_BASE), .OUT_STEP(OUT_STEP)
    ) u_act (.clk, .acc, .thresholds, .out_data(y));
  end else if (REQUANT) begin : g_requant
    localparam int LSH_BITS = RQ_LSH_MAX > 0 ? $clog2(RQ_LSH_MAX + 1) : 1;
    localparam int RSH_BITS = RQ_RSH_MAX > 0 ? $clog2(RQ_RSH_MAX + 1) : 1;
    localparam int B_AT = 0, M_AT = PE * RQ_BIAS_BITS, L_AT = M_AT + PE * 31,
                   R_AT = L_AT + (RQ_HALF_EVEN ? 0 : PE * LSH_BITS),
                   RQ_BITS = R_AT + PE * RSH_BITS;
    logic [RQ_BITS-1:0] rq;
    rom #(.WIDTH(RQ_BITS), .DEPTH(FOLDS), .MEM_FILE(REQUANT_FILE), .STYLE(REQUANT_STYLE))
        u_requant (.clk, .addr, .data(rq));
    requant #(
        .PE(PE), .ACC_BITS(ACC_BITS), .BIAS_BITS(RQ_BIAS_BITS), .HALF_EVEN(RQ_HALF_EVEN),
        .PRODUCT_BITS(RQ_PRODUCT_BITS), .SUM_BITS(RQ_SUM_BITS), .LSH_MAX(RQ_LSH_MAX),
        .RSH_MAX(RQ_RSH_MAX), .RSH_MIN(RQ_RSH_MIN), .OUT_BITS(OUT_BITS),
        .ZERO_POINT(RQ_ZERO_POINT), .CLAMP_MIN(RQ_CLAMP_MIN), .CLAMP_MAX(RQ_CLAMP_MAX)
    ) u_act (
        .clk, .acc, .bias(rq[B_AT+:PE*RQ_BIAS_BITS]), .multiplier(rq[M_AT+:PE*31]),
        .lsh(RQ_HALF_EVEN ? '0 : rq[L_AT+:PE*LSH_BITS]), .rsh(rq[R_AT+:PE*RSH_BITS]),
        .out_data(y));
  end else begin : g_none  // no parameters: the clock and the ROM address go unused
    wire unused = &{1'b0, clk, addr};
    assign y = acc;
  end
endmodule

// The activation of an MVAU or VVAU: per PE, the fold's accumulators to output codes by
// N_THRES thresholds (mvau_thresholds.sv), by a requantization (REQUANT.enable,
// requant.sv), or, with neither, the accumulators themselves. The fold's parameters come
// from a ROM word read at `addr`, which the caller presents pipeline_pkg::rom_latency()
// cycles before `acc`; the codes leave activation_latency(N_THRES, REQUANT.enable) cycles
// after `acc`.
module activation #(
    parameter int PE = 2,
    parameter int FOLDS = 4,  // ROM words: output channels / PE
    parameter int ACC_BITS = 8,
    parameter int N_THRES = 1,  // 0: requantization (REQUANT.enable) or accumulators out
    parameter int OUT_BITS = 1,
    parameter int OUT_BASE = 0,
    parameter int OUT_STEP = 1,
    // the ROM, word f: thresholds T[f*PE+p][j] at (p*N_THRES+j)*(ACC_BITS+1); or the
    // requantization's PE biases, multipliers, left shifts (tflite only) and right shifts of
    // channels f*PE.., each a PE-field group in that order from bit 0
    parameter ACTIVATION_FILE = "",
    parameter ACTIVATION_STYLE = "logic",
    parameter pipeline_pkg::requant_params_t REQUANT = '0,  // requant.sv's; '0: none
    localparam int AW = FOLDS > 1 ? $clog2(FOLDS) : 1,
    localparam int Y_BITS = N_THRES > 0 || REQUANT.enable ? OUT_BITS : ACC_BITS
) (
    input  logic                   clk,
    input  logic [         AW-1:0] addr,
    input  logic [PE*ACC_BITS-1:0] acc,
    output logic [  PE*Y_BITS-1:0] y
);
  localparam int THR_BITS = ACC_BITS + 1;

  if (N_THRES > 0 && REQUANT.enable) begin : g_check
    $error("activation: thresholds (N_THRES > 0) or REQUANT, not both");
  end

  if (N_THRES > 0) begin : g_thresholds
    logic [PE*N_THRES*THR_BITS-1:0] thresholds;
    rom #(.WIDTH(PE * N_THRES * THR_BITS), .DEPTH(FOLDS), .MEM_FILE(ACTIVATION_FILE),
          .STYLE(ACTIVATION_STYLE)) u_thresholds (.clk, .addr, .data(thresholds));
    mvau_thresholds #(
        .PE(PE), .ACC_BITS(ACC_BITS), .N_THRES(N_THRES),
        .OUT_BITS(OUT_BITS), .OUT_BASE(OUT_BASE), .OUT_STEP(OUT_STEP)
    ) u_act (.clk, .acc, .thresholds, .out_data(y));
  end else if (REQUANT.enable) begin : g_requant
    localparam bit HALF_EVEN = REQUANT.half_even;
    localparam int BIAS_BITS = REQUANT.bias_bits;
    localparam int LSH_BITS = REQUANT.lsh_max > 0 ? $clog2(REQUANT.lsh_max + 1) : 1;
    localparam int RSH_BITS = REQUANT.rsh_max > 0 ? $clog2(REQUANT.rsh_max + 1) : 1;
    localparam int B_AT = 0, M_AT = PE * BIAS_BITS, L_AT = M_AT + PE * 31,
                   R_AT = L_AT + (HALF_EVEN ? 0 : PE * LSH_BITS),
                   RQ_BITS = R_AT + PE * RSH_BITS;
    logic [RQ_BITS-1:0] rq;
    rom #(.WIDTH(RQ_BITS), .DEPTH(FOLDS), .MEM_FILE(ACTIVATION_FILE), .STYLE(ACTIVATION_STYLE))
        u_requant (.clk, .addr, .data(rq));
    requant #(.PE(PE), .ACC_BITS(ACC_BITS), .OUT_BITS(OUT_BITS), .REQUANT(REQUANT)) u_act (
        .clk, .acc, .bias(rq[B_AT+:PE*BIAS_BITS]), .multiplier(rq[M_AT+:PE*31]),
        .lsh(HALF_EVEN ? '0 : rq[L_AT+:PE*LSH_BITS]), .rsh(rq[R_AT+:PE*RSH_BITS]),
        .out_data(y));
  end else begin : g_none  // no parameters: the clock and the ROM address go unused
    wire unused = &{1'b0, clk, addr};
    assign y = acc;
  end
endmodule

// The join of a residual network (the IR's `add`): two code streams of one frame, PIXELS
// pixels of CHANNELS channels, PE channels a beat (beat f of a pixel: channels f*PE..
// f*PE+PE-1; lane p at [p*BITS +: BITS]), added lane by lane as acc = WA*a + WB*b in
// ACC_BITS signed bits (which hold every sum: the IR's bounds), then activation.sv's
// thresholds, requantization or none, the fold's word of ACTIVATION_FILE for each beat
// (word f for channels f*PE..). A beat is taken from both inputs together, one a cycle;
// tlast leaves on a frame's last beat (the inputs' tlast, checked in simulation, is
// otherwise unused).
//
// Flow control is by credit as in the mvau and vvau: a beat is only taken when the output
// FIFO is sure to have room for its result, so the datapath (a fixed pipeline, valid bits
// beside it) never stalls and no path runs from m_axis_tready to the inputs' treadys.
// An input's tready waits for the other input's tvalid (a join takes both or neither).
module add_layer #(
    parameter int CHANNELS = 4,
    parameter int PE = 2,
    parameter int PIXELS = 3,  // beats a frame: PIXELS * CHANNELS / PE
    parameter int A_BITS = 4,  // s0's codes
    parameter bit A_SIGNED = 1'b0,
    parameter int B_BITS = 4,  // s1's codes
    parameter bit B_SIGNED = 1'b1,
    parameter int WA = 1,
    parameter int WB = 1,
    parameter int ACC_BITS = 6,
    parameter int N_THRES = 1,  // 0: requantization (REQUANT.enable) or the sums out
    parameter int OUT_BITS = 1,
    parameter int OUT_BASE = 0,
    parameter int OUT_STEP = 1,
    parameter ACTIVATION_FILE = "",  // word f: activation.sv's, for channels f*PE..
    parameter ACTIVATION_STYLE = "logic",
    parameter pipeline_pkg::requant_params_t REQUANT = '0,  // the requantization; '0: none
    localparam int Y_BITS = N_THRES > 0 || REQUANT.enable ? OUT_BITS : ACC_BITS
) (
    input  logic                 clk,
    input  logic                 rst_n,
    input  logic                 s0_axis_tvalid,
    output logic                 s0_axis_tready,
    input  logic [PE*A_BITS-1:0] s0_axis_tdata,
    input  logic                 s0_axis_tlast,
    input  logic                 s1_axis_tvalid,
    output logic                 s1_axis_tready,
    input  logic [PE*B_BITS-1:0] s1_axis_tdata,
    input  logic                 s1_axis_tlast,
    output logic                 m_axis_tvalid,
    input  logic                 m_axis_tready,
    output logic [PE*Y_BITS-1:0] m_axis_tdata,
    output logic                 m_axis_tlast
);
  localparam int FOLDS = CHANNELS / PE;
  localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;
  localparam int PW = PIXELS > 1 ? $clog2(PIXELS) : 1;
  // pipeline depths after a beat's issue, as in the vvau: the sum with its activation
  // parameters (ACC_AT, the ROM read's latency), the result entering the output FIFO (PIPE)
  localparam int ACC_AT = pipeline_pkg::rom_latency();
  localparam int PIPE = ACC_AT + pipeline_pkg::activation_latency(N_THRES, REQUANT.enable);
  // credits cover the round trip issue -> FIFO -> pop -> credit back: one beat per cycle
  localparam int OUT_DEPTH = PIPE + 2;
  localparam int CRW = $clog2(OUT_DEPTH + 1);

  if (CHANNELS % PE != 0) begin : g_check
    $error("add_layer: PE must divide CHANNELS");
  end
  if (ACC_AT != 2) begin : g_check_rom
    $error("add_layer: the sum is written for a ROM latency of 2");
  end

  // ---- issue: both inputs, a credit; the beat's fold and pixel -----------------------
  logic [FW-1:0] fold;
  logic [PW-1:0] pixel;
  logic [CRW-1:0] credits;
  logic out_pop;

  wire credit_ok = credits != '0;
  wire issue = s0_axis_tvalid && s1_axis_tvalid && credit_ok;
  assign s0_axis_tready = s1_axis_tvalid && credit_ok;
  assign s1_axis_tready = s0_axis_tvalid && credit_ok;
  wire last_fold = fold == FW'(FOLDS - 1);
  wire frame_end = last_fold && pixel == PW'(PIXELS - 1);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      fold <= '0;
      pixel <= '0;
      credits <= CRW'(OUT_DEPTH);
    end else begin
      if (issue) begin
        fold <= last_fold ? '0 : fold + 1'b1;
        if (last_fold) pixel <= pixel == PW'(PIXELS - 1) ? '0 : pixel + 1'b1;
      end
      credits <= credits - CRW'(issue) + CRW'(out_pop);
    end
  end

  // tlast_q[k], valid_q[k]: of the beat issued k cycles ago
  logic [PIPE:1] tlast_q, valid_q;
  always_ff @(posedge clk) tlast_q <= {tlast_q[PIPE-1:1], frame_end};
  always_ff @(posedge clk) begin
    if (!rst_n) valid_q <= '0;
    else valid_q <= {valid_q[PIPE-1:1], issue};
  end

  // ---- per lane: the weighted codes, then their sum, at ACC_AT = 2 ---------------------
  // x * w for the constant w as shifts and adds of x: a multiplier would take a DSP block
  // where w = 3 needs one adder. Modulo 2^ACC_BITS: the sum, within the accumulator's
  // range, comes out exact.
  function automatic logic [ACC_BITS-1:0] times(input logic [ACC_BITS-1:0] x, input int w);
    times = '0;
    for (int k = 0; k < 31; k++) begin
      if (((w < 0 ? -w : w) >> k) % 2 == 1) times = times + (x << k);
    end
    if (w < 0) times = -times;
  endfunction

  logic [PE*ACC_BITS-1:0] a_weighted, b_weighted, acc;
  for (genvar p = 0; p < PE; p++) begin : g_lane
    wire [A_BITS-1:0] a = s0_axis_tdata[p*A_BITS+:A_BITS];
    wire [B_BITS-1:0] b = s1_axis_tdata[p*B_BITS+:B_BITS];
    wire [ACC_BITS-1:0] a_acc = A_SIGNED ? ACC_BITS'($signed(a)) : ACC_BITS'(a);
    wire [ACC_BITS-1:0] b_acc = B_SIGNED ? ACC_BITS'($signed(b)) : ACC_BITS'(b);
    always_ff @(posedge clk) begin
      a_weighted[p*ACC_BITS+:ACC_BITS] <= times(a_acc, WA);
      b_weighted[p*ACC_BITS+:ACC_BITS] <= times(b_acc, WB);
      acc[p*ACC_BITS+:ACC_BITS] <= a_weighted[p*ACC_BITS+:ACC_BITS]
                                   + b_weighted[p*ACC_BITS+:ACC_BITS];
    end
  end

  // ---- activation (its word read at issue, with the sum 2 cycles later), output FIFO ---
  wire y_valid = valid_q[PIPE];
  wire y_tlast = tlast_q[PIPE];
  logic [PE*Y_BITS-1:0] y;

  activation #(
      .PE(PE), .FOLDS(FOLDS), .ACC_BITS(ACC_BITS), .N_THRES(N_THRES), .OUT_BITS(OUT_BITS),
      .OUT_BASE(OUT_BASE), .OUT_STEP(OUT_STEP), .ACTIVATION_FILE(ACTIVATION_FILE),
      .ACTIVATION_STYLE(ACTIVATION_STYLE), .REQUANT(REQUANT)
  ) u_act (.clk, .addr(fold), .acc, .y);

  logic out_ready;
  axis_fifo #(.WIDTH(PE * Y_BITS), .DEPTH(OUT_DEPTH)) u_out (
      .clk, .rst_n,
      .s_axis_tvalid(y_valid), .s_axis_tready(out_ready), .s_axis_tdata(y), .s_axis_tlast(y_tlast),
      .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
  assign out_pop = m_axis_tvalid && m_axis_tready;

`ifndef SYNTHESIS
  // credits guarantee room: a full FIFO here is a bug in this module; the inputs' frames
  // must be this layer's
  always_ff @(posedge clk) begin
    if (rst_n && y_valid && !out_ready) $error("add_layer: output FIFO overflow");
    if (rst_n && issue && (s0_axis_tlast != frame_end || s1_axis_tlast != frame_end))
      $error("add_layer: an input's tlast is not at the end of a frame of PIXELS pixels");
  end
`endif
endmodule

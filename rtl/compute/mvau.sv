// Matrix-vector-activation unit: one dense layer of MH outputs over MW inputs, folded to PE
// output rows x SIMD input lanes. An input vector arrives as SF = MW/SIMD beats; the unit
// makes NF = MH/PE passes over it (the first straight from the stream, the others from an
// input buffer), one SIMD-wide beat per cycle with no bubble between passes or vectors,
// and emits one PE-wide beat per pass: thresholded codes, requantized codes (REQUANT,
// requant.sv), or with neither the signed ACC_BITS accumulators. tlast is set on a vector's last output beat when the vector's
// last input beat carried it.
//
// Flow control is by credit: an output beat is only started when the output FIFO is sure
// to have room for it, so the datapath never stalls and s_axis_tready depends on
// registers only (no path from m_axis_tready to s_axis_tready). The datapath is a fixed
// pipeline (depths in pipeline_pkg) without enables; one shift register of valid bits and
// tags beside it says what each stage holds.
module mvau #(
    parameter int MW = 8,
    parameter int MH = 4,
    parameter int PE = 2,
    parameter int SIMD = 4,
    parameter int IN_BITS = 1,
    parameter bit IN_SIGNED = 1'b0,
    parameter bit IN_BIPOLAR = 1'b1,
    parameter int W_BITS = 1,
    parameter bit W_SIGNED = 1'b0,
    parameter bit W_BIPOLAR = 1'b1,
    parameter int ACC_BITS = 5,
    parameter int N_THRES = 1,  // 0: requantization (REQUANT.enable) or accumulators out
    parameter int OUT_BITS = 1,
    parameter int OUT_BASE = 0,
    parameter int OUT_STEP = 1,
    parameter WEIGHTS_FILE = "",  // word nf*SF+sf: W[nf*PE+p][sf*SIMD+s] at (p*SIMD+s)*W_BITS
    parameter ACTIVATION_FILE = "",  // word nf: activation.sv's word f, for channels nf*PE..
    parameter WEIGHTS_STYLE = "block",  // rom STYLE of each memory: "block" | "logic"
    parameter ACTIVATION_STYLE = "logic",
    parameter pipeline_pkg::requant_params_t REQUANT = '0,  // the requantization; '0: none
    localparam int Y_BITS = N_THRES > 0 || REQUANT.enable ? OUT_BITS : ACC_BITS
) (
    input  logic                    clk,
    input  logic                    rst_n,
    input  logic                    s_axis_tvalid,
    output logic                    s_axis_tready,
    input  logic [SIMD*IN_BITS-1:0] s_axis_tdata,
    input  logic                    s_axis_tlast,
    output logic                    m_axis_tvalid,
    input  logic                    m_axis_tready,
    output logic [   PE*Y_BITS-1:0] m_axis_tdata,
    output logic                    m_axis_tlast
);
  localparam int SF = MW / SIMD;
  localparam int NF = MH / PE;
  localparam bit XNOR = IN_BIPOLAR && W_BIPOLAR;
  localparam int SFW = SF > 1 ? $clog2(SF) : 1;
  localparam int NFW = NF > 1 ? $clog2(NF) : 1;
  localparam int WAW = NF * SF > 1 ? $clog2(NF * SF) : 1;
  // pipeline depths, in cycles after a beat's issue: its weights and input meet (W_AT),
  // its dot product (DOT_AT), the accumulator with it (ACC_AT), the result entering the
  // output FIFO (PIPE)
  localparam int W_AT = pipeline_pkg::rom_latency();
  localparam int DOT_AT = W_AT + (XNOR ? pipeline_pkg::xnor_dot_latency(SIMD)
                                       : pipeline_pkg::mac_dot_latency(SIMD));
  localparam int ACC_AT = DOT_AT + 1;
  localparam int PIPE = ACC_AT + pipeline_pkg::activation_latency(N_THRES, REQUANT.enable);
  // credits cover the round trip issue -> FIFO -> pop -> credit back: one beat per cycle
  localparam int OUT_DEPTH = PIPE + 2;
  localparam int CRW = $clog2(OUT_DEPTH + 1);
  localparam int TAG_BITS = 3 + NFW;  // {first, last, tlast, nf} of a pass's beat
  localparam int FIRST = NFW + 2, LAST = NFW + 1, TLAST = NFW;

  // ---- issue: counters, input buffer, weight ROM read --------------------------------
  logic [SFW-1:0] sf;
  logic [NFW-1:0] nf;
  logic [WAW-1:0] waddr;
  logic [CRW-1:0] credits;
  logic vector_tlast;  // tlast of the current vector, for its later passes
  logic out_pop;

  wire from_stream = nf == '0;
  wire pass_end = sf == SFW'(SF - 1);
  wire credit_ok = !pass_end || credits != '0;
  wire issue = (from_stream ? s_axis_tvalid : 1'b1) && credit_ok;
  wire tlast_in = from_stream ? s_axis_tlast : vector_tlast;
  assign s_axis_tready = from_stream && credit_ok;

  always_ff @(posedge clk) begin
    if (issue && from_stream && pass_end) vector_tlast <= s_axis_tlast;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      sf <= '0;
      nf <= '0;
      waddr <= '0;
      credits <= CRW'(OUT_DEPTH);
    end else begin
      if (issue) begin
        sf <= pass_end ? '0 : sf + 1'b1;
        if (pass_end) nf <= nf == NFW'(NF - 1) ? '0 : nf + 1'b1;
        waddr <= waddr == WAW'(NF * SF - 1) ? '0 : waddr + 1'b1;
      end
      credits <= credits - CRW'(issue && pass_end) + CRW'(out_pop);
    end
  end

  // tag_q[k], valid_q[k]: the beat issued k cycles ago
  wire [TAG_BITS-1:0] tag0 = {sf == '0, pass_end, pass_end && nf == NFW'(NF - 1) && tlast_in, nf};
  logic [PIPE:1][TAG_BITS-1:0] tag_q;
  logic [PIPE:1] valid_q;
  always_ff @(posedge clk) tag_q <= {tag_q[PIPE-1:1], tag0};
  always_ff @(posedge clk) begin
    if (!rst_n) valid_q <= '0;
    else valid_q <= {valid_q[PIPE-1:1], issue};
  end

  // the input beat meets its weights W_AT = 2 cycles after issue: x_q, then x in one copy
  // per PE. The copies are kept (Yosys would merge them): one register fanning out to every
  // PE's tree is the slowest route of a wide layer.
  if (W_AT != 2) begin : g_check
    $error("mvau: the input path is written for a ROM latency of 2");
  end
  logic [SIMD*IN_BITS-1:0] x_q;
  if (NF > 1) begin : g_ibuf
    logic [SIMD*IN_BITS-1:0] ibuf[SF];
    // written whenever the first pass waits on the stream, not only on issue: sf moves on
    // with issue only, so the issued beat is the last word written at sf, and the write
    // enable does not hang on `issue` (the slowest route of a wide multi-bit layer)
    // with PE copies of x, x_q's select is a register of its own, equal to from_stream
    // (the write enable): with from_stream itself Yosys takes the select for the buffer's
    // write-through, folds x_q into the LUT RAM's read, and the select's mux then drives
    // every PE's copy of x. With one PE that folding is kept: it saves a LUT and a
    // flip-flop per input bit (the default job's dense0: 300 LUT, 264 FF)
    logic stream_q;
    always_ff @(posedge clk) begin
      if (!rst_n) stream_q <= 1'b1;
      else if (issue && pass_end) stream_q <= nf == NFW'(NF - 1);
    end
    always_ff @(posedge clk) begin
      if (from_stream) ibuf[sf] <= s_axis_tdata;
      x_q <= (PE > 1 ? stream_q : from_stream) ? s_axis_tdata : ibuf[sf];
    end
  end else begin : g_no_ibuf
    always_ff @(posedge clk) x_q <= s_axis_tdata;
  end
  logic [PE*SIMD*IN_BITS-1:0] x;
  for (genvar p = 0; p < PE; p++) begin : g_x_copy
    (* keep *) always_ff @(posedge clk) x[p*SIMD*IN_BITS+:SIMD*IN_BITS] <= x_q;
  end

  logic [PE*SIMD*W_BITS-1:0] w;
  rom #(.WIDTH(PE * SIMD * W_BITS), .DEPTH(NF * SF), .MEM_FILE(WEIGHTS_FILE),
        .STYLE(WEIGHTS_STYLE)) u_weights (.clk, .addr(waddr), .data(w));

  // ---- dot products per PE ----------------------------------------------------------
  localparam int SUM_BITS = XNOR ? 1 + $clog2(SIMD) : IN_BITS + W_BITS + 1 + $clog2(SIMD);
  logic [PE*SUM_BITS-1:0] dot;

  if (XNOR) begin : g_xnor
    mvau_xnor_dot #(.PE(PE), .SIMD(SIMD)) u_dot (.clk, .x, .w, .sum(dot));
  end else begin : g_mac
    mvau_mac_dot #(
        .PE(PE), .SIMD(SIMD),
        .X_BITS(IN_BITS), .X_SIGNED(IN_SIGNED), .X_BIPOLAR(IN_BIPOLAR),
        .W_BITS(W_BITS), .W_SIGNED(W_SIGNED), .W_BIPOLAR(W_BIPOLAR)
    ) u_dot (.clk, .x, .w, .sum(dot));
  end

  // ---- accumulate over a pass (XNOR: the popcount, i.e. (acc + MW) / 2) ----------------
  wire dot_valid = valid_q[DOT_AT];
  wire dot_first = tag_q[DOT_AT][FIRST];
  logic [PE*ACC_BITS-1:0] acc;

  for (genvar p = 0; p < PE; p++) begin : g_acc
    wire [ACC_BITS-1:0] part = XNOR ? ACC_BITS'(dot[p*SUM_BITS+:SUM_BITS])
                                    : ACC_BITS'($signed(dot[p*SUM_BITS+:SUM_BITS]));
    always_ff @(posedge clk) begin
      if (dot_valid) acc[p*ACC_BITS+:ACC_BITS] <= (dot_first ? '0 : acc[p*ACC_BITS+:ACC_BITS]) + part;
    end
  end

  // ---- activation, output FIFO --------------------------------------------------------
  // a pass's last beat at PIPE carries its result
  wire y_valid = valid_q[PIPE] && tag_q[PIPE][LAST];
  wire y_tlast = tag_q[PIPE][TLAST];
  logic [PE*Y_BITS-1:0] y;

  // thresholds compare the accumulator itself (an XNOR layer's popcount, its thresholds
  // moved there); the requantization and the output take the dot product, 2 * popcount - MW
  logic [PE*ACC_BITS-1:0] act_in;
  for (genvar p = 0; p < PE; p++) begin : g_sum
    wire [ACC_BITS-1:0] a = acc[p*ACC_BITS+:ACC_BITS];
    assign act_in[p*ACC_BITS+:ACC_BITS] = XNOR && N_THRES == 0 ? (a << 1) - ACC_BITS'(MW) : a;
  end
  // read so that the pass's parameters arrive with its accumulator, at ACC_AT
  activation #(
      .PE(PE), .FOLDS(NF), .ACC_BITS(ACC_BITS), .N_THRES(N_THRES), .OUT_BITS(OUT_BITS),
      .OUT_BASE(OUT_BASE), .OUT_STEP(OUT_STEP), .ACTIVATION_FILE(ACTIVATION_FILE),
      .ACTIVATION_STYLE(ACTIVATION_STYLE), .REQUANT(REQUANT)
  ) u_act (
      .clk, .addr(tag_q[ACC_AT-pipeline_pkg::rom_latency()][NFW-1:0]), .acc(act_in), .y);

  logic out_ready;
  axis_fifo #(.WIDTH(PE * Y_BITS), .DEPTH(OUT_DEPTH)) u_out (
      .clk, .rst_n,
      .s_axis_tvalid(y_valid), .s_axis_tready(out_ready), .s_axis_tdata(y), .s_axis_tlast(y_tlast),
      .m_axis_tvalid, .m_axis_tready, .m_axis_tdata, .m_axis_tlast);
  assign out_pop = m_axis_tvalid && m_axis_tready;

`ifndef SYNTHESIS
  // credits guarantee room: a full FIFO here is a bug in this module
  always_ff @(posedge clk) begin
    if (rst_n && y_valid && !out_ready) $error("mvau: output FIFO overflow");
  end
`endif
endmodule

// AXI-Stream fork: one stream into N_OUT consumers, each with its own backpressure (a
// residual's skip path and main branch). Every output sees the input's beat (tdata and
// tlast shared by all) with its own tvalid; an output that took the beat is marked taken
// and does not see it again, and the input beat is consumed in the cycle the last output
// takes it. So a stalled consumer neither holds the others to its pace beat by beat nor
// makes them see a beat twice. No register on the data path (zero latency): m_axis_tvalid
// follows s_axis_tvalid and s_axis_tready the outputs' treadys combinationally, so a
// stage with registered handshakes (every rtl/ layer, or an axis_fifo) sits on each side.
module axis_fork #(
    parameter int N_OUT = 2,
    parameter int WIDTH = 8
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    input  logic [WIDTH-1:0] s_axis_tdata,
    input  logic             s_axis_tlast,
    output logic [N_OUT-1:0] m_axis_tvalid,
    input  logic [N_OUT-1:0] m_axis_tready,
    output logic [WIDTH-1:0] m_axis_tdata,  // every output's
    output logic             m_axis_tlast   // every output's
);
  if (N_OUT < 2) begin : g_check
    $error("axis_fork: N_OUT must be at least 2");
  end

  logic [N_OUT-1:0] taken;  // the outputs that took the current input beat

  assign m_axis_tvalid = {N_OUT{s_axis_tvalid}} & ~taken;
  assign s_axis_tready = &(taken | m_axis_tready);
  assign m_axis_tdata = s_axis_tdata;
  assign m_axis_tlast = s_axis_tlast;

  always_ff @(posedge clk) begin
    if (!rst_n) taken <= '0;
    else if (s_axis_tvalid) taken <= s_axis_tready ? '0 : taken | m_axis_tready;
  end
endmodule

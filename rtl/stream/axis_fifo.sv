// AXI-Stream FIFO (first-word fall-through). tready/tvalid come from the registered fill
// level only, so there is no combinational path between the two sides. Up to
// THERMOMETER_DEPTH words the level is a thermometer code (bit k: more than k words held):
// tvalid and tready are single register bits and each bit's next value depends on its
// neighbours, push and pop only, two LUT levels round the loop; with a binary count, the
// compare -> pop -> add -> compare loop, routed to the stage's pop consumers, set a whole
// stage's ECP5 Fmax (7.1 ns). Deeper FIFOs (between stages) keep a binary count.
module axis_fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    input  logic [WIDTH-1:0] s_axis_tdata,
    input  logic             s_axis_tlast,
    output logic             m_axis_tvalid,
    input  logic             m_axis_tready,
    output logic [WIDTH-1:0] m_axis_tdata,
    output logic             m_axis_tlast
);
  localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int THERMOMETER_DEPTH = 16;

  logic [WIDTH:0] mem[DEPTH];  // {tlast, tdata}
  logic [AW-1:0] wr_ptr, rd_ptr;

  wire push = s_axis_tvalid && s_axis_tready;
  wire pop = m_axis_tvalid && m_axis_tready;

  assign {m_axis_tlast, m_axis_tdata} = mem[rd_ptr];

  always_ff @(posedge clk) begin
    if (push) mem[wr_ptr] <= {s_axis_tlast, s_axis_tdata};
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      wr_ptr <= '0;
      rd_ptr <= '0;
    end else begin
      if (push) wr_ptr <= wr_ptr == AW'(DEPTH - 1) ? '0 : wr_ptr + 1'b1;
      if (pop) rd_ptr <= rd_ptr == AW'(DEPTH - 1) ? '0 : rd_ptr + 1'b1;
    end
  end

  if (DEPTH <= THERMOMETER_DEPTH) begin : g_thermometer
    logic [DEPTH-1:0] level;
    assign s_axis_tready = !level[DEPTH-1];
    assign m_axis_tvalid = level[0];
    always_ff @(posedge clk) begin
      if (!rst_n) level <= '0;
      else if (push && !pop) level <= level << 1 | DEPTH'(1);
      else if (pop && !push) level <= level >> 1;
    end
  end else begin : g_count
    localparam int CW = $clog2(DEPTH + 1);
    logic [CW-1:0] count;
    assign s_axis_tready = count != CW'(DEPTH);
    assign m_axis_tvalid = count != '0;
    always_ff @(posedge clk) begin
      if (!rst_n) count <= '0;
      else count <= count + CW'(push) - CW'(pop);
    end
  end
endmodule

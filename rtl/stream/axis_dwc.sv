// AXI-Stream width converter between streams of ELEM_BITS-wide elements: IN_ELEMS per
// input beat to OUT_ELEMS per output beat, for any ratio (frames hold a common multiple of
// both). Elements queue in a shift buffer; element 0 sits in the low bits of a beat.
// tready depends on the registered fill level only. The buffer holds 2*IN + OUT - gcd
// elements, the least that lets the input run at full rate while the output drains.
module axis_dwc #(
    parameter int ELEM_BITS = 1,
    parameter int IN_ELEMS  = 4,
    parameter int OUT_ELEMS = 6
) (
    input  logic                          clk,
    input  logic                          rst_n,
    input  logic                          s_axis_tvalid,
    output logic                          s_axis_tready,
    input  logic [IN_ELEMS*ELEM_BITS-1:0] s_axis_tdata,
    input  logic                          s_axis_tlast,
    output logic                          m_axis_tvalid,
    input  logic                          m_axis_tready,
    output logic [OUT_ELEMS*ELEM_BITS-1:0] m_axis_tdata,
    output logic                          m_axis_tlast
);
  function automatic int gcd(input int a, input int b);
    int x, y, t;
    x = a;
    y = b;
    while (y != 0) begin
      t = x % y;
      x = y;
      y = t;
    end
    gcd = x;
  endfunction

  localparam int CAP = 2 * IN_ELEMS + OUT_ELEMS - gcd(IN_ELEMS, OUT_ELEMS);
  localparam int CW = $clog2(CAP + 1);
  localparam int BW = CAP * ELEM_BITS;

  logic [BW-1:0] buffer;
  logic [CAP-1:0] last;  // per element: the frame's last element
  logic [CW-1:0] count;

  wire push = s_axis_tvalid && s_axis_tready;
  wire pop = m_axis_tvalid && m_axis_tready;

  assign s_axis_tready = count <= CW'(CAP - IN_ELEMS);
  assign m_axis_tvalid = count >= CW'(OUT_ELEMS);
  assign m_axis_tdata = buffer[OUT_ELEMS*ELEM_BITS-1:0];
  assign m_axis_tlast = last[OUT_ELEMS-1];

  // after this cycle's pop, the new beat goes at element index `fill`
  wire [CW-1:0] fill = pop ? count - CW'(OUT_ELEMS) : count;
  wire [BW-1:0] kept = pop ? buffer >> (OUT_ELEMS * ELEM_BITS) : buffer;
  wire [CAP-1:0] kept_last = pop ? last >> OUT_ELEMS : last;
  wire [BW-1:0] in_mask = BW'({IN_ELEMS * ELEM_BITS{1'b1}}) << (fill * ELEM_BITS);
  wire [BW-1:0] in_data = BW'(s_axis_tdata) << (fill * ELEM_BITS);
  wire [CAP-1:0] in_last = CAP'(s_axis_tlast) << (fill + CW'(IN_ELEMS - 1));
  wire [CAP-1:0] in_last_mask = CAP'({IN_ELEMS{1'b1}}) << fill;

  always_ff @(posedge clk) begin
    buffer <= push ? (kept & ~in_mask) | in_data : kept;
    last   <= push ? (kept_last & ~in_last_mask) | in_last : kept_last;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) count <= '0;
    else count <= fill + (push ? CW'(IN_ELEMS) : '0);
  end
endmodule

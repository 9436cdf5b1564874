// UART transmitter: 8 data bits LSB first, no parity, one stop bit, CLKS_PER_BIT clocks a
// bit. A byte is taken from an AXI-Stream input; s_axis_tready is high while the line is
// idle (a register, so it does not depend on s_axis_tvalid), and tx is a register too.
module uart_tx #(
    parameter int CLKS_PER_BIT = 16
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic       s_axis_tvalid,
    output logic       s_axis_tready,
    input  logic [7:0] s_axis_tdata,
    output logic       tx
);
  localparam int CW = $clog2(CLKS_PER_BIT);
  localparam logic [CW-1:0] BIT_LAST = CW'(CLKS_PER_BIT - 1);

  logic busy;
  logic [8:0] shift;  // the bits still to send after the current one: data, then stop
  logic [3:0] bits_left;
  logic [CW-1:0] count;

  assign s_axis_tready = !busy;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      busy <= 1'b0;
      tx <= 1'b1;
      shift <= '1;
      bits_left <= '0;
      count <= '0;
    end else if (!busy) begin
      if (s_axis_tvalid) begin
        busy <= 1'b1;
        tx <= 1'b0;  // start bit
        shift <= {1'b1, s_axis_tdata};
        bits_left <= 4'd9;
        count <= BIT_LAST;
      end
    end else if (count != '0) begin
      count <= count - 1'b1;
    end else if (bits_left == '0) begin
      busy <= 1'b0;  // the stop bit has lasted a whole bit time
    end else begin
      tx <= shift[0];
      shift <= {1'b1, shift[8:1]};
      bits_left <= bits_left - 1'b1;
      count <= BIT_LAST;
    end
  end
endmodule

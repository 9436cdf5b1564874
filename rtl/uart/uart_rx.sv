// UART receiver: 8 data bits LSB first, no parity, one stop bit, CLKS_PER_BIT clocks a bit.
// The line passes two synchronizing flops; a start bit is confirmed at its middle (a
// shorter low pulse is a glitch) and every later bit is sampled at its middle. A stop bit
// read as 0 is a framing error, reported with the byte; the receiver then waits for the
// line to go high again (a break) before it looks for the next start bit.
module uart_rx #(
    parameter int CLKS_PER_BIT = 16
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic       rx,
    output logic       valid,        // one cycle: data and frame_error hold a received byte
    output logic [7:0] data,
    output logic       frame_error
);
  localparam int CW = $clog2(CLKS_PER_BIT);
  localparam logic [CW-1:0] BIT_LAST = CW'(CLKS_PER_BIT - 1);
  localparam logic [CW-1:0] HALF_LAST = CW'((CLKS_PER_BIT - 1) / 2);

  typedef enum logic [2:0] {
    IDLE,
    START,
    DATA,
    STOP,
    BREAK
  } state_t;

  state_t state;
  logic [1:0] sync;  // sync[1]: the line, synchronized
  logic [CW-1:0] count;  // clocks left to the next sampling point
  logic [2:0] bit_index;

  wire line = sync[1];
  wire sample = count == '0;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      sync <= 2'b11;
      state <= IDLE;
      count <= '0;
      bit_index <= '0;
      valid <= 1'b0;
      frame_error <= 1'b0;
      data <= '0;
    end else begin
      sync <= {sync[0], rx};
      valid <= 1'b0;
      if (state != IDLE && state != BREAK) count <= sample ? BIT_LAST : count - 1'b1;
      unique case (state)
        IDLE:
        if (!line) begin
          state <= START;
          count <= HALF_LAST;
        end
        START: if (sample) state <= line ? IDLE : DATA;
        DATA:
        if (sample) begin
          data <= {line, data[7:1]};
          bit_index <= bit_index + 1'b1;
          if (bit_index == 3'd7) state <= STOP;
        end
        STOP:
        if (sample) begin
          valid <= 1'b1;
          frame_error <= !line;
          state <= line ? IDLE : BREAK;
        end
        BREAK: if (line) state <= IDLE;
        default: state <= IDLE;
      endcase
    end
  end
endmodule

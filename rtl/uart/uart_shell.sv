// A UART shell around a streaming accelerator (flow/board; the protocol is in README.md).
//
// Receive: a frame is IN_BEATS x IN_ELEMS input codes, each sent as IN_BYTES bytes, little
// endian, of which the low IN_BITS bits are the code (flow.packing's field: two's
// complement, BIPOLAR 1 = +1). The codes fill the accelerator's input beats (element k at
// bits [k*IN_BITS, (k+1)*IN_BITS)); tlast goes with a frame's last beat.
// Transmit: for each output frame, the OUT_BEATS x OUT_ELEMS (at most 128) signed accumulators
// as OUT_BYTES little-endian two's complement bytes each, class 0 first, then one status
// byte: the class (the first index of the largest accumulator, as numpy's argmax) in bits
// 6..0 and bit 7 set when the frame's request was damaged (a stop bit read as 0, a byte
// lost because the accelerator had not taken the previous beat, or a frame cut short:
// after TIMEOUT_CYCLES without a byte inside a frame the rest is filled with zero codes),
// so that a host can drop its answer.
//
// A frame's damage flag waits in a FIFO of FLAGS entries for its answer: a host may have
// up to FLAGS frames outstanding. rst_n is the shell's power-on reset (POR_CYCLES clocks
// after configuration), for the accelerator too.
module uart_shell #(
    parameter int CLKS_PER_BIT = 104,
    parameter int TIMEOUT_CYCLES = 600000,
    parameter int IN_BITS = 8,
    parameter int IN_ELEMS = 8,
    parameter int IN_BEATS = 8,
    parameter int OUT_BITS = 8,
    parameter int OUT_ELEMS = 2,
    parameter int OUT_BEATS = 5,
    parameter int FLAGS = 4,
    parameter int POR_CYCLES = 15
) (
    input  logic                        clk,
    input  logic                        rx,
    output logic                        tx,
    output logic                        rst_n,
    // to the accelerator's input
    output logic                        m_axis_tvalid,
    input  logic                        m_axis_tready,
    output logic [IN_ELEMS*IN_BITS-1:0] m_axis_tdata,
    output logic                        m_axis_tlast,
    // from the accelerator's output
    input  logic                        s_axis_tvalid,
    output logic                        s_axis_tready,
    input  logic [OUT_ELEMS*OUT_BITS-1:0] s_axis_tdata,
    input  logic                        s_axis_tlast
);
  localparam int IN_BYTES = (IN_BITS + 7) / 8;
  localparam int OUT_BYTES = (OUT_BITS + 7) / 8;
  localparam int IBW = IN_BYTES > 1 ? $clog2(IN_BYTES) : 1;
  localparam int IEW = IN_ELEMS > 1 ? $clog2(IN_ELEMS) : 1;
  localparam int IFW = IN_BEATS > 1 ? $clog2(IN_BEATS) : 1;
  localparam int OBW = OUT_BYTES > 1 ? $clog2(OUT_BYTES) : 1;
  localparam int OEW = OUT_ELEMS > 1 ? $clog2(OUT_ELEMS) : 1;
  localparam int OFW = OUT_BEATS > 1 ? $clog2(OUT_BEATS) : 1;
  localparam int TW = $clog2(TIMEOUT_CYCLES + 1);
  localparam int PW = $clog2(POR_CYCLES + 1);

  // ---- power-on reset: FPGA flops start at their initial values
  /* verilator lint_off PROCASSINIT */  // the initial value is the reset here
  logic [PW-1:0] por_count = '0;
  /* verilator lint_on PROCASSINIT */
  always_ff @(posedge clk) if (por_count != PW'(POR_CYCLES)) por_count <= por_count + 1'b1;
  assign rst_n = por_count == PW'(POR_CYCLES);

  // ---- receive: bytes -> input beats
  logic rx_valid, rx_frame_error;
  logic [7:0] rx_data;
  uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_rx (
      .clk, .rst_n, .rx, .valid(rx_valid), .data(rx_data), .frame_error(rx_frame_error));

  logic [IBW-1:0] in_byte;  // position of the next byte: byte of code, code of beat, beat
  logic [IEW-1:0] in_elem;
  logic [IFW-1:0] in_beat;
  logic [TW-1:0] idle;  // clocks since the last byte, inside a frame
  logic padding;  // filling a cut frame with zero codes
  logic damaged;  // the frame being received
  logic flag_valid, flag_ready, flag_out, flag_out_valid, flag_pop, unused_flag_last;

  wire in_frame = in_byte != '0 || in_elem != '0 || in_beat != '0;
  wire last_byte = in_byte == IBW'(IN_BYTES - 1);
  wire last_elem = in_elem == IEW'(IN_ELEMS - 1);
  wire last_beat = in_beat == IFW'(IN_BEATS - 1);
  wire frame_end = last_byte && last_elem && last_beat;
  // a byte goes into the beat register only while the accelerator does not hold it, and the
  // last one of a frame only when its flag has room
  wire slot_free = !m_axis_tvalid && (!frame_end || flag_ready);
  wire take = slot_free && (padding || rx_valid);
  wire [7:0] byte_in = padding ? 8'd0 : rx_data;
  wire bad_byte = padding || (rx_valid && rx_frame_error);

  assign flag_valid = take && frame_end;

  always_ff @(posedge clk) begin
    if (take) begin
      for (int e = 0; e < IN_ELEMS; e++) begin
        for (int j = 0; j < IN_BITS; j++) begin
          if (IEW'(e) == in_elem && IBW'(j / 8) == in_byte)
            m_axis_tdata[e*IN_BITS+j] <= byte_in[j%8];
        end
      end
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      in_byte <= '0;
      in_elem <= '0;
      in_beat <= '0;
      idle <= '0;
      padding <= 1'b0;
      damaged <= 1'b0;
      m_axis_tvalid <= 1'b0;
      m_axis_tlast <= 1'b0;
    end else begin
      if (m_axis_tvalid && m_axis_tready) m_axis_tvalid <= 1'b0;
      if (take) begin
        idle <= '0;
        in_byte <= last_byte ? '0 : in_byte + 1'b1;
        if (last_byte) begin
          in_elem <= last_elem ? '0 : in_elem + 1'b1;
          if (last_elem) begin
            in_beat <= last_beat ? '0 : in_beat + 1'b1;
            m_axis_tvalid <= 1'b1;
            m_axis_tlast <= last_beat;
          end
        end
        if (frame_end) begin
          padding <= 1'b0;
          damaged <= 1'b0;
        end else if (bad_byte) begin
          damaged <= 1'b1;
        end
      end else begin
        if (rx_valid) damaged <= 1'b1;  // a byte lost: the slot was still full
        if (in_frame && !padding) begin
          idle <= idle + 1'b1;
          if (idle == TW'(TIMEOUT_CYCLES)) padding <= 1'b1;
        end
      end
    end
  end

  axis_fifo #(.WIDTH(1), .DEPTH(FLAGS)) u_flags (
      .clk, .rst_n,
      .s_axis_tvalid(flag_valid), .s_axis_tready(flag_ready),
      .s_axis_tdata(damaged || bad_byte), .s_axis_tlast(1'b0),
      .m_axis_tvalid(flag_out_valid), .m_axis_tready(flag_pop),
      .m_axis_tdata(flag_out), .m_axis_tlast(unused_flag_last));

  // ---- transmit: accumulators, then the status byte
  logic [OBW-1:0] out_byte;
  logic [OEW-1:0] out_elem;
  logic [OFW-1:0] out_beat;
  logic status;  // sending the status byte
  logic signed [OUT_BITS-1:0] best;
  logic [6:0] best_class;
  logic tx_valid, tx_ready;
  logic [7:0] tx_data;

  wire signed [OUT_BITS-1:0] acc = s_axis_tdata[out_elem*OUT_BITS+:OUT_BITS];
  wire [OUT_BYTES*8-1:0] acc_bytes = (OUT_BYTES * 8)'(acc);  // sign-extended
  wire [6:0] acc_class = 7'(out_beat) * 7'(OUT_ELEMS) + 7'(out_elem);
  wire first_acc = out_beat == '0 && out_elem == '0;
  wire out_last_byte = out_byte == OBW'(OUT_BYTES - 1);
  wire out_last_elem = out_elem == OEW'(OUT_ELEMS - 1);
  wire out_last_beat = out_beat == OFW'(OUT_BEATS - 1);
  wire sent = tx_valid && tx_ready;

  assign tx_valid = status ? flag_out_valid : s_axis_tvalid;
  assign tx_data = status ? {flag_out, best_class} : acc_bytes[out_byte*8+:8];
  assign s_axis_tready = !status && sent && out_last_byte && out_last_elem;
  assign flag_pop = status && sent;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      out_byte <= '0;
      out_elem <= '0;
      out_beat <= '0;
      status <= 1'b0;
      best <= '0;
      best_class <= '0;
    end else if (sent) begin
      if (status) begin
        status <= 1'b0;
      end else begin
        // the first largest wins: a later one must be strictly larger
        if (out_byte == '0 && (first_acc || acc > best)) begin
          best <= acc;
          best_class <= acc_class;
        end
        out_byte <= out_last_byte ? '0 : out_byte + 1'b1;
        if (out_last_byte) begin
          out_elem <= out_last_elem ? '0 : out_elem + 1'b1;
          if (out_last_elem) begin
            out_beat <= out_last_beat ? '0 : out_beat + 1'b1;
            status <= out_last_beat;
          end
        end
      end
    end
  end

  uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_tx (
      .clk, .rst_n, .s_axis_tvalid(tx_valid), .s_axis_tready(tx_ready), .s_axis_tdata(tx_data),
      .tx);

  // the accelerator's framing is checked by the host (one status byte after CLASSES values)
  wire unused = s_axis_tlast;
endmodule

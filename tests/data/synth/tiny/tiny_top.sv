module tiny_top (
    input  logic       clk,
    input  logic       rst,
    input  logic [3:0] s_data,
    input  logic       s_valid,
    output logic [1:0] m_data,
    output logic       m_valid
);
    logic [1:0] mid;
    logic mid_v;
    tiny_mvau #(.IN(16), .OUT(8), .PE(2), .SIMD(4), .WEIGHTS("w0.mem"), .THRESH("t0.mem"))
        u_l0 (.clk, .rst, .in_data(s_data), .in_valid(s_valid), .out_data(mid), .out_valid(mid_v));
    tiny_mvau #(.IN(8), .OUT(4), .PE(2), .SIMD(2), .WEIGHTS("w1.mem"), .THRESH("t1.mem"))
        u_l1 (.clk, .rst, .in_data(mid), .in_valid(mid_v), .out_data(m_data), .out_valid(m_valid));
endmodule

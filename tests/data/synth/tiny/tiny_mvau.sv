// Tiny XNOR-popcount-threshold layer used to exercise the synthesis flow.
module tiny_mvau #(
    parameter int IN = 16,
    parameter int OUT = 8,
    parameter int PE = 2,
    parameter int SIMD = 4,
    parameter int ACC_W = 6,
    parameter WEIGHTS = "w.mem",
    parameter THRESH = "t.mem"
) (
    input  logic            clk,
    input  logic            rst,
    input  logic [SIMD-1:0] in_data,
    input  logic            in_valid,
    output logic [PE-1:0]   out_data,
    output logic            out_valid
);
    localparam int SF = IN / SIMD;
    localparam int NF = OUT / PE;
    localparam int DEPTH = SF * NF;
    logic [PE*SIMD-1:0] wrom [DEPTH];
    logic [PE*ACC_W-1:0] trom [NF];
    initial $readmemh(WEIGHTS, wrom);
    initial $readmemh(THRESH, trom);

    logic [$clog2(DEPTH)-1:0] addr;
    logic [$clog2(NF > 1 ? NF : 2)-1:0] nf;
    logic [$clog2(SF > 1 ? SF : 2)-1:0] sf;
    logic [PE*SIMD-1:0] w;
    logic [PE*ACC_W-1:0] th;
    logic [SIMD-1:0] x;
    logic v, last;
    logic [ACC_W-1:0] acc [PE];

    always_ff @(posedge clk) begin
        w <= wrom[addr];
        th <= trom[nf];
        x <= in_data;
        v <= in_valid;
        last <= in_valid && sf == SF - 1;
        if (rst) begin
            addr <= '0; sf <= '0; nf <= '0;
        end else if (in_valid) begin
            addr <= addr == DEPTH - 1 ? '0 : addr + 1'b1;
            sf <= sf == SF - 1 ? '0 : sf + 1'b1;
            if (sf == SF - 1) nf <= nf == NF - 1 ? '0 : nf + 1'b1;
        end
    end

    always_ff @(posedge clk) begin
        out_valid <= 1'b0;
        for (int p = 0; p < PE; p++) begin
            if (v) begin
                acc[p] <= ($countones(~(w[p*SIMD +: SIMD] ^ x)) + (last ? '0 : acc[p]));
                if (last) out_data[p] <= acc[p] >= th[p*ACC_W +: ACC_W];
            end
        end
        if (v && last) out_valid <= 1'b1;
    end
endmodule

// Pipeline depths of the rtl/ blocks, in one place: a block's latency in cycles follows
// from its parameters, and the MVAU sizes its credit loop and aligns its sideband from
// these. flow/backends/rtl/pipeline.py mirrors them for the expected cycle counts
// (checked by the simulation: measured latency == expected), and the type of the
// requantization's parameters, which the layers pass down to requant.sv as one value.
package pipeline_pkg;
  // a requantization's parameters (requant.sv; the per-channel ones are in a ROM): one
  // parameter from the generated top through conv_layer, mvau or vvau and activation to
  // requant.sv, which unpacks them. All zero ('0, the default): no requantization.
  // flow/backends/rtl/pipeline.py's RequantParams mirrors the fields, in this order.
  typedef struct packed {
    bit enable;
    bit half_even;  // the rounding: half_even, or tflite
    int bias_bits;
    int product_bits;  // half_even: acc * m and acc * m + bias, signed
    int sum_bits;  // tflite: acc + bias, signed
    int lsh_max;  // tflite: largest left shift of any channel
    int rsh_max;  // largest right shift of any channel
    int rsh_min;  // half_even: smallest right shift of any channel
    int zero_point;
    int clamp_min;
    int clamp_max;
  } requant_params_t;

  // a requantization (enable set) with these parameters: the form Yosys reads where a
  // value of the type is written (it takes neither '{field: value} nor named arguments)
  function automatic requant_params_t requant_params(
      input bit half_even, input int bias_bits, input int product_bits, input int sum_bits,
      input int lsh_max, input int rsh_max, input int rsh_min, input int zero_point,
      input int clamp_min, input int clamp_max);
    requant_params = {1'b1, half_even, bias_bits, product_bits, sum_bits, lsh_max, rsh_max,
                      rsh_min, zero_point, clamp_min, clamp_max};
  endfunction

  // adder levels between pipeline registers: with two, TFC-w1a1's layers meet 150 MHz on
  // an ECP5-85F (python -m bench.bench_synth --only tfc)
  localparam int TREE_STAGE_LEVELS = 2;

  // registers inside an adder tree of n operands, one after every k-th level below the
  // last (the caller registers the sum); k = 0: combinational
  function automatic int tree_latency(input int n, input int k);
    tree_latency = (k == 0 || $clog2(n) == 0) ? 0 : ($clog2(n) - 1) / k;
  endfunction

  // a ROM read, either style (rom.sv): block RAM then a register, or an address register
  // then LUTs
  function automatic int rom_latency();
    rom_latency = 2;
  endfunction

  // XNOR-popcount lanes: the tree (the XNOR sits in its first stage), then the sum register
  function automatic int xnor_dot_latency(input int simd);
    xnor_dot_latency = tree_latency(simd, TREE_STAGE_LEVELS) + 1;
  endfunction

  // multiply-accumulate lanes: the product register, the tree, the sum register
  function automatic int mac_dot_latency(input int simd);
    mac_dot_latency = tree_latency(simd, TREE_STAGE_LEVELS) + 2;
  endfunction

  // thresholds: the comparison register, the tree counting reached thresholds, the code
  function automatic int thresholds_latency(input int n_thres);
    thresholds_latency = tree_latency(n_thres, TREE_STAGE_LEVELS) + 2;
  endfunction

  // requantization (requant.sv), either rounding: the inputs (tflite: their sum), the
  // multiplier's inputs, the product, the product plus the nudged bias (tflite: its high
  // word), the right shift, the clamped code
  function automatic int requant_latency();
    requant_latency = 6;
  endfunction

  // an MVAU's or VVAU's activation (activation.sv): thresholds, requantization or none
  function automatic int activation_latency(input int n_thres, input bit requant);
    activation_latency = n_thres > 0 ? thresholds_latency(n_thres)
                       : requant ? requant_latency() : 0;
  endfunction

  // line buffer rows of a sliding-window unit (swu.sv): the most an output row holds (its
  // window rows up to the next row's top, or the frame's remaining rows on the last one)
  // plus the first output row of the next frame, so the writer can run that far ahead
  function automatic int swu_rows(input int h, input int kh, input int sh);
    int span, first;
    span = kh + sh - 1 < h ? kh + sh - 1 : h;
    first = kh < h ? kh : h;
    swu_rows = span + first;
  endfunction
endpackage

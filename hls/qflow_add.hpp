// The add layer: the element-wise join of two code streams of one shape (a residual block's
// skip path and main branch), then the activation of a dense layer's output channel:
//   acc = WA * a + WB * b      a: a code of AT, b: of BT (not BIPOLAR); WA, WB per tensor
//   y   = act(acc)             qflow::thresholds, qflow::requant or qflow::requant_half_even
//                              (their parameters [PE][NF], channel nf * PE + pe), or
//                              qflow::accumulator_out
// The inputs' zero points are folded into the activation's parameters, so only WA * a +
// WB * b is computed, in the exact width of its worst case.
//
// Streams: one frame per call, PIXELS pixels (H x W; 1 for a flat vector) of CHANNELS
// channels, channel-last; each word holds PE channels (channel nf * PE + pe in a pixel's
// word nf, field pe), the output likewise. A word of each input in and one out per cycle
// at II = 1: PIXELS x CHANNELS / PE cycles per frame.
#ifndef QFLOW_ADD_HPP
#define QFLOW_ADD_HPP

#include <type_traits>

#include "qflow_activation.hpp"
#include "qflow_requant.hpp"
#include "qflow_types.hpp"

namespace qflow {

// The least and greatest value of W * x for x in T.
template <class T, int W>
constexpr int64_t scaled_min() { return W >= 0 ? W * T::min : W * T::max; }
template <class T, int W>
constexpr int64_t scaled_max() { return W >= 0 ? W * T::max : W * T::min; }

// Bits of WA * a + WB * b over every pair of codes.
template <class AT, class BT, int WA, int WB>
constexpr unsigned add_acc_bits() {
  return signed_bits_for(scaled_min<AT, WA>() + scaled_min<BT, WB>(),
                         scaled_max<AT, WA>() + scaled_max<BT, WB>());
}

template <unsigned CHANNELS, unsigned PE, unsigned PIXELS, class AT, class BT, int WA, int WB,
          class Act>
void add_layer(hls::stream<ap_uint<PE * AT::bits>>& a, hls::stream<ap_uint<PE * BT::bits>>& b,
               hls::stream<ap_uint<PE * Act::out_type::bits>>& out, const Act& act) {
  QFLOW_HLS(INLINE)
  static_assert(CHANNELS % PE == 0, "PE must divide the channels");
  static_assert(!std::is_same<AT, bipolar>::value && !std::is_same<BT, bipolar>::value,
                "BIPOLAR inputs are not supported");
  constexpr unsigned AccBits = add_acc_bits<AT, BT, WA, WB>();
  static_assert(AccBits <= kMaxBits, "accumulators wider than 32 bits are not supported");
  constexpr unsigned NF = CHANNELS / PE, OB = Act::out_type::bits;

  unsigned nf = 0;
  for (unsigned i = 0; i < PIXELS * NF; i++) {
    QFLOW_HLS(PIPELINE II=1)
    const ap_uint<PE * AT::bits> a_word = a.read();
    const ap_uint<PE * BT::bits> b_word = b.read();
    ap_uint<PE * OB> y = 0;
    for (unsigned pe = 0; pe < PE; pe++) {
      QFLOW_HLS(UNROLL)
      const ap_int<AccBits> acc = WA * AT::decode(field<AT::bits>(a_word, pe)) +
                                  WB * BT::decode(field<BT::bits>(b_word, pe));
      set_field<OB>(y, pe, act.activate(nf, pe, acc));
    }
    out.write(y);
    nf = nf == NF - 1 ? 0 : nf + 1;
  }
}

}  // namespace qflow

#endif  // QFLOW_ADD_HPP

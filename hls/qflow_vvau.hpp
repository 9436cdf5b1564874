// Per-channel reductions over windows: the depthwise convolution's vector-vector-activation
// unit (VVAU, as FINN's Vector_Vector_Activate_Batch) and, with another unit, the max of a
// pool's window (qflow_pool.hpp).
//
// Input:  windows from qflow::sliding_window, each Taps x C / PE words in (tap, channel word)
//         order, PE channels per word (channel nf * PE + pe in word nf, field pe).
// Output: per window, C / PE words of PE results, channel-last.
// Channel c's result reduces its own Taps elements only: PE channels advance per cycle,
// Taps x C / PE cycles per window at II = 1.
#ifndef QFLOW_VVAU_HPP
#define QFLOW_VVAU_HPP

#include "qflow_activation.hpp"
#include "qflow_mvau.hpp"
#include "qflow_types.hpp"

namespace qflow {

// Unit: in_type / out_type (qflow datatypes), state (one channel's running value),
// step(state&, pe, nf, tap, field) folding one element in (tap 0 starts afresh) and
// finish(pe, nf, state) -> the output field.
template <unsigned Taps, unsigned C, unsigned PE, unsigned Reps, class Unit>
void channelwise(hls::stream<ap_uint<PE * Unit::in_type::bits>>& in,
                 hls::stream<ap_uint<PE * Unit::out_type::bits>>& out, const Unit& unit) {
  QFLOW_HLS(INLINE)
  static_assert(C % PE == 0, "PE must divide the channels");
  constexpr unsigned NF = C / PE, IB = Unit::in_type::bits, OB = Unit::out_type::bits;
  typename Unit::state state[PE][NF];
  QFLOW_HLS(ARRAY_PARTITION variable=state complete dim=1)

  unsigned tap = 0, nf = 0;
  for (unsigned i = 0; i < Reps * Taps * NF; i++) {
    QFLOW_HLS(PIPELINE II=1)
    const ap_uint<PE * IB> x = in.read();
    ap_uint<PE * OB> y = 0;
    for (unsigned pe = 0; pe < PE; pe++) {
      QFLOW_HLS(UNROLL)
      unit.step(state[pe][nf], pe, nf, tap, field<IB>(x, pe));
      set_field<OB>(y, pe, unit.finish(pe, nf, state[pe][nf]));
    }
    if (tap == Taps - 1) out.write(y);
    if (nf == NF - 1) {
      nf = 0;
      tap = tap == Taps - 1 ? 0 : tap + 1;
    } else {
      nf++;
    }
  }
}

// Depthwise convolution: weights[pe][nf * Taps + tap] is W[nf * PE + pe][tap] (taps in
// (ky, kx) order), Act as the MVAU's.
template <unsigned Taps, unsigned NF, unsigned PE, class WT, class IT, unsigned AccBits,
          class Act>
struct vvau_unit {
  using in_type = IT;
  using out_type = typename Act::out_type;
  using state = ap_int<AccBits>;
  const table_word_t<WT::bits> (&weights)[PE][NF * Taps];
  const Act& act;

  void step(state& acc, unsigned pe, unsigned nf, unsigned tap,
            const ap_uint<IT::bits>& x) const {
    if (tap == 0) acc = 0;
    lane<WT, IT>::add(acc, weights[pe][nf * Taps + tap], x);
  }
  ap_uint<out_type::bits> finish(unsigned pe, unsigned nf, const state& acc) const {
    return act.activate(nf, pe, acc);
  }
};

template <unsigned Taps, unsigned C, unsigned PE, class WT, class IT, unsigned AccBits,
          class Act, unsigned Reps>
void vvau(hls::stream<ap_uint<PE * IT::bits>>& in,
          hls::stream<ap_uint<PE * Act::out_type::bits>>& out,
          const table_word_t<WT::bits> (&weights)[PE][(C / PE) * Taps], const Act& act) {
  QFLOW_HLS(INLINE)
  static_assert(AccBits <= kMaxBits, "accumulators wider than 32 bits are not supported");
  const vvau_unit<Taps, C / PE, PE, WT, IT, AccBits, Act> unit{weights, act};
  channelwise<Taps, C, PE, Reps>(in, out, unit);
}

}  // namespace qflow

#endif  // QFLOW_VVAU_HPP

// The matrix-vector-activation unit (MVAU): a streaming dense layer folded onto PE rows x
// SIMD lanes, as FINN's Matrix_Vector_Activate_Batch.
//
// Input:  MW / SIMD words per vector, each SIMD packed elements of IT (element k of the
//         vector in word k / SIMD, field k % SIMD).
// Output: MH / PE words per vector, each PE packed outputs (channel nf * PE + pe in word nf,
//         field pe).
// Weights: weights[pe][nf * SF + sf] packs W[nf * PE + pe][sf * SIMD + s] in field s.
// Activation (Act): qflow::thresholds or qflow::requant for hidden layers,
// qflow::accumulator_out for the last.
// Reps: vectors per call (a convolution's windows per frame; 1 for a dense layer).
// One loop iteration per (nf, sf) tile: MH/PE x MW/SIMD cycles per vector at II = 1.
#ifndef QFLOW_MVAU_HPP
#define QFLOW_MVAU_HPP

#include "qflow_activation.hpp"
#include "qflow_requant.hpp"
#include "qflow_types.hpp"

namespace qflow {

// One SIMD lane's contribution to an accumulator: multiply-accumulate in general,
// add/subtract when one side is BIPOLAR, XNOR (popcount) when both are.
template <class WT, class IT>
struct lane {
  template <class Acc>
  static void add(Acc& acc, const ap_uint<WT::bits>& w, const ap_uint<IT::bits>& x) {
    acc += WT::decode(w) * IT::decode(x);
  }
};

template <class IT>
struct lane<bipolar, IT> {
  template <class Acc>
  static void add(Acc& acc, const ap_uint<1>& w, const ap_uint<IT::bits>& x) {
    if (w)
      acc += IT::decode(x);
    else
      acc -= IT::decode(x);
  }
};

template <class WT>
struct lane<WT, bipolar> {
  template <class Acc>
  static void add(Acc& acc, const ap_uint<WT::bits>& w, const ap_uint<1>& x) {
    if (x)
      acc += WT::decode(w);
    else
      acc -= WT::decode(w);
  }
};

// Both BIPOLAR: the accumulator counts agreeing bits (popcount of XNOR); the thresholds
// are on that count (flow.ir.popcount_thresholds), since acc = 2 * popcount - MW.
template <>
struct lane<bipolar, bipolar> {
  template <class Acc>
  static void add(Acc& acc, const ap_uint<1>& w, const ap_uint<1>& x) {
    acc += (w == x) ? 1 : 0;
  }
};

template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, class WT, class IT,
          unsigned AccBits, class Act, unsigned Reps = 1>
void mvau(hls::stream<ap_uint<SIMD * IT::bits>>& in,
          hls::stream<ap_uint<PE * Act::out_type::bits>>& out,
          const table_word_t<SIMD * WT::bits> (&weights)[PE][(MH / PE) * (MW / SIMD)],
          const Act& act) {
  QFLOW_HLS(INLINE)
  static_assert(MW % SIMD == 0 && MH % PE == 0, "SIMD must divide MW and PE must divide MH");
  static_assert(AccBits <= kMaxBits, "accumulators wider than 32 bits are not supported");
  constexpr unsigned SF = MW / SIMD, NF = MH / PE;
  constexpr unsigned OB = Act::out_type::bits;

  // The input vector is read during the first output fold and replayed for the others.
  ap_uint<SIMD * IT::bits> buffer[SF];
  ap_int<AccBits> acc[PE];
  QFLOW_HLS(ARRAY_PARTITION variable=acc complete dim=1)

  unsigned nf = 0, sf = 0;
  for (unsigned i = 0; i < Reps * NF * SF; i++) {
    QFLOW_HLS(PIPELINE II=1)
    ap_uint<SIMD * IT::bits> x;
    if (nf == 0) {
      x = in.read();
      buffer[sf] = x;
    } else {
      x = buffer[sf];
    }
    ap_uint<PE * OB> y = 0;
    for (unsigned pe = 0; pe < PE; pe++) {
      QFLOW_HLS(UNROLL)
      if (sf == 0) acc[pe] = 0;
      const ap_uint<SIMD * WT::bits> w = weights[pe][nf * SF + sf];
      for (unsigned s = 0; s < SIMD; s++) {
        QFLOW_HLS(UNROLL)
        lane<WT, IT>::add(acc[pe], field<WT::bits>(w, s), field<IT::bits>(x, s));
      }
      set_field<OB>(y, pe, act.activate(nf, pe, acc[pe]));
    }
    if (sf == SF - 1) {
      out.write(y);
      sf = 0;
      nf = nf == NF - 1 ? 0 : nf + 1;
    } else {
      sf++;
    }
  }
}

}  // namespace qflow

#endif  // QFLOW_MVAU_HPP

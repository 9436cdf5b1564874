// Max pooling on codes, channel-last, PE channels per stream word (as FINN's
// StreamingMaxPool and, for general windows, ConvolutionInputGenerator + Pool_batch).
// The largest code of each window; for BIPOLAR codes (bit 1 = +1) that is the OR of the
// bits. Padded taps never win (ONNX pads MaxPool with -inf).
#ifndef QFLOW_POOL_HPP
#define QFLOW_POOL_HPP

#include "qflow_types.hpp"
#include "qflow_vvau.hpp"
#include "qflow_window.hpp"

namespace qflow {

// The larger of two codes of T (compared as values: for BIPOLAR, a OR b).
template <class T>
ap_uint<T::bits> max_code(const ap_uint<T::bits>& a, const ap_uint<T::bits>& b) {
  return T::decode(b) > T::decode(a) ? b : a;
}

template <class T>
struct max_unit {
  using in_type = T;
  using out_type = T;
  using state = ap_uint<T::bits>;

  void step(state& m, unsigned, unsigned, unsigned tap, const ap_uint<T::bits>& x) const {
    m = tap == 0 ? x : max_code<T>(m, x);
  }
  ap_uint<T::bits> finish(unsigned, unsigned, const state& m) const { return m; }
};

// Any window (overlapping, strided, padded): the sliding-window generator pads with the
// type's minimum code, the max unit reduces each window's taps per channel.
template <class G, unsigned PE, class T, int Min>
void maxpool(hls::stream<ap_uint<PE * T::bits>>& in, hls::stream<ap_uint<PE * T::bits>>& out) {
  QFLOW_HLS(DATAFLOW)
  hls::stream<ap_uint<PE * T::bits>> windows("maxpool.windows");
  QFLOW_HLS(STREAM variable=windows depth=2)
  sliding_window<G, PE, T, T, Min>(in, windows);
  channelwise<G::taps, G::C, PE, G::OH * G::OW>(windows, out, max_unit<T>{});
}

// Kernel == stride (non-overlapping windows, FINN's StreamingMaxPool): no line buffer,
// only the running maxima of one row of windows. Padded taps are skipped; pixels past the
// last whole window (floor mode) are read and dropped.
template <class G, unsigned PE, class T, int Min>
void streaming_maxpool(hls::stream<ap_uint<PE * T::bits>>& in,
                       hls::stream<ap_uint<PE * T::bits>>& out) {
  static_assert(G::KH == G::SH && G::KW == G::SW, "kernel == stride (else qflow::maxpool)");
  static_assert(G::C % PE == 0, "PE must divide the channels");
  constexpr unsigned CF = G::C / PE;
  using word = ap_uint<PE * T::bits>;
  word maxima[G::OW * CF];

  for (unsigned r = 0; r < G::HP; r++) {
    for (unsigned c = 0; c < G::WP; c++) {
      for (unsigned cf = 0; cf < CF; cf++) {
        QFLOW_HLS(PIPELINE II=1)
        const bool inside = r >= G::PT && r < G::PT + G::H && c >= G::PL && c < G::PL + G::W;
        const word x = inside ? in.read() : word(0);
        const unsigned oy = r / G::KH, ox = c / G::KW;
        if (oy >= G::OH || ox >= G::OW) continue;
        word& m = maxima[ox * CF + cf];
        const bool first = r % G::KH == 0 && c % G::KW == 0;
        if (first) m = splat<PE, T>(T::encode(Min));
        if (inside) {
          for (unsigned pe = 0; pe < PE; pe++) {
            QFLOW_HLS(UNROLL)
            set_field<T::bits>(m, pe, max_code<T>(field<T::bits>(m, pe), field<T::bits>(x, pe)));
          }
        }
        if (r % G::KH == G::KH - 1 && c % G::KW == G::KW - 1) out.write(m);
      }
    }
  }
}

}  // namespace qflow

#endif  // QFLOW_POOL_HPP

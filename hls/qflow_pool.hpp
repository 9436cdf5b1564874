// Pooling on codes, channel-last, PE channels per stream word (as FINN's
// StreamingMaxPool and, for general windows, ConvolutionInputGenerator + Pool_batch).
// Max: the largest code of each window; for BIPOLAR codes (bit 1 = +1) that is the OR of
// the bits. Padded taps never win (ONNX pads MaxPool with -inf).
// Average (Brevitas' TruncAvgPool2d): each window's sum of codes (padded taps add 0),
// divided by 2^Shift rounding half to even or down (times 2^-Shift for Shift < 0), clamped
// to [Lo, Hi].
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

// floor(a / 2^Shift), or half to even; a * 2^-Shift for Shift <= 0
template <int Shift, bool HalfEven>
int64_t shift_round(int64_t a) {
  if (Shift <= 0) return a * (int64_t(1) << (Shift <= 0 ? -Shift : 0));
  constexpr int S = Shift > 0 ? Shift : 1;
  const int64_t q = a >= 0 ? a >> S : -((-a + (int64_t(1) << S) - 1) >> S);
  if (!HalfEven) return q;
  const int64_t r = a - q * (int64_t(1) << S), half = int64_t(1) << (S - 1);
  return q + ((r > half || (r == half && (q & 1))) ? 1 : 0);
}

template <class IT, class OT, unsigned AccBits, int Shift, bool HalfEven, int Lo, int Hi>
struct sum_unit {
  using in_type = IT;
  using out_type = OT;
  using state = ap_int<AccBits>;

  void step(state& acc, unsigned, unsigned, unsigned tap, const ap_uint<IT::bits>& x) const {
    acc = tap == 0 ? state(IT::decode(x)) : state(int64_t(acc) + int64_t(IT::decode(x)));
  }
  ap_uint<OT::bits> finish(unsigned, unsigned, const state& acc) const {
    const int64_t v = shift_round<Shift, HalfEven>(int64_t(acc));
    return OT::encode(v < Lo ? Lo : v > Hi ? Hi : v);
  }
};

// The taps an average pool sums: its input codes, but BIPOLAR ones as TERNARY, whose code 0
// (a padded tap) adds nothing; a BIPOLAR bit has no 0.
template <class IT>
struct sum_taps {
  using type = IT;
};
template <>
struct sum_taps<bipolar> {
  using type = ternary;
};

// Any window: the sliding-window generator pads with code 0, the sum unit reduces each
// window's taps per channel into an AccBits-bit signed sum.
template <class G, unsigned PE, class IT, class OT, unsigned AccBits, int Shift, bool HalfEven,
          int Lo, int Hi>
void avgpool(hls::stream<ap_uint<PE * IT::bits>>& in, hls::stream<ap_uint<PE * OT::bits>>& out) {
  QFLOW_HLS(DATAFLOW)
  static_assert(AccBits <= kMaxBits, "sums wider than 32 bits are not supported");
  using TapT = typename sum_taps<IT>::type;
  hls::stream<ap_uint<PE * TapT::bits>> windows("avgpool.windows");
  QFLOW_HLS(STREAM variable=windows depth=2)
  sliding_window<G, PE, IT, TapT, 0>(in, windows);
  channelwise<G::taps, G::C, PE, G::OH * G::OW>(
      windows, out, sum_unit<TapT, OT, AccBits, Shift, HalfEven, Lo, Hi>{});
}

}  // namespace qflow

#endif  // QFLOW_POOL_HPP

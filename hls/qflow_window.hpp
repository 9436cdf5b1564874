// The sliding-window generator: a line buffer over a channel-last stream that emits every
// window of a convolution or pool, as FINN's ConvolutionInputGenerator (with FMPadding's
// padding folded in).
//
// Input:  the frame's pixels in (y, x) order, each C / Lanes words of Lanes packed elements
//         of IT (channel c in word c / Lanes, field c % Lanes).
// Output: every window in (oy, ox) order, each read in (ky, kx, channel word) order, the
//         flow.ir.conv window order: KH * KW * C / Lanes words of Lanes elements of WinT.
// Padding is inserted here: a padded tap is the code Pad (the IR's pad value) encoded in
// WinT. A BIPOLAR stream has no code for the pad value 0, so a convolution over padded
// BIPOLAR codes takes WinT = ternary (+1, -1 and 0 for a padded tap, which then adds
// nothing); pools pad with the type's minimum, which never wins.
#ifndef QFLOW_WINDOW_HPP
#define QFLOW_WINDOW_HPP

#include "qflow_types.hpp"

namespace qflow {

// A window's geometry: an H x W x C frame, KH x KW kernel, strides, pads (top, left,
// bottom, right); OH x OW windows (floor, as flow.ir.conv.window_output).
template <unsigned H_, unsigned W_, unsigned C_, unsigned KH_, unsigned KW_, unsigned SH_,
          unsigned SW_, unsigned PT_, unsigned PL_, unsigned PB_, unsigned PR_>
struct window_shape {
  static constexpr unsigned H = H_, W = W_, C = C_, KH = KH_, KW = KW_, SH = SH_, SW = SW_;
  static constexpr unsigned PT = PT_, PL = PL_, PB = PB_, PR = PR_;
  static constexpr unsigned HP = H + PT + PB, WP = W + PL + PR;  // the padded frame
  static constexpr unsigned OH = (HP - KH) / SH + 1, OW = (WP - KW) / SW + 1;
  static constexpr unsigned taps = KH * KW;
  static_assert(KH >= 1 && KW >= 1 && SH >= 1 && SW >= 1, "kernel and stride of at least 1");
  static_assert(HP >= KH && WP >= KW, "the kernel is larger than the padded frame");
};

// A word of Lanes copies of one code.
template <unsigned Lanes, class T>
ap_uint<Lanes * T::bits> splat(const ap_uint<T::bits>& f) {
  ap_uint<Lanes * T::bits> w = 0;
  for (unsigned l = 0; l < Lanes; l++) {
    QFLOW_HLS(UNROLL)
    set_field<T::bits>(w, l, f);
  }
  return w;
}

// Each lane's code re-encoded from IT to OT (the identity when they are the same type).
template <unsigned Lanes, class IT, class OT>
ap_uint<Lanes * OT::bits> recode(const ap_uint<Lanes * IT::bits>& x) {
  ap_uint<Lanes * OT::bits> w = 0;
  for (unsigned l = 0; l < Lanes; l++) {
    QFLOW_HLS(UNROLL)
    set_field<OT::bits>(w, l, OT::encode(IT::decode(field<IT::bits>(x, l))));
  }
  return w;
}

// The buffer keeps the last KH rows of the padded frame (row r in slot r % KH). A window
// is complete when its bottom-right tap arrives, and is emitted then: the rows it spans
// are still in the buffer, since a row overwrites the one KH rows above it.
template <class G, unsigned Lanes, class IT, class WinT, int Pad>
void sliding_window(hls::stream<ap_uint<Lanes * IT::bits>>& in,
                    hls::stream<ap_uint<Lanes * WinT::bits>>& out) {
  static_assert(G::C % Lanes == 0, "Lanes must divide the channels");
  constexpr unsigned CF = G::C / Lanes;
  using word = ap_uint<Lanes * WinT::bits>;
  const word pad = splat<Lanes, WinT>(WinT::encode(Pad));
  word rows[G::KH][G::WP * CF];
  QFLOW_HLS(ARRAY_PARTITION variable=rows complete dim=1)

  for (unsigned r = 0; r < G::HP; r++) {
    for (unsigned c = 0; c < G::WP; c++) {
      const bool inside = r >= G::PT && r < G::PT + G::H && c >= G::PL && c < G::PL + G::W;
      for (unsigned cf = 0; cf < CF; cf++) {
        QFLOW_HLS(PIPELINE II=1)
        rows[r % G::KH][c * CF + cf] = inside ? recode<Lanes, IT, WinT>(in.read()) : pad;
      }
      // (r, c) is the last tap of window (oy, ox) when r + 1 - KH = oy * SH, etc.
      if (r + 1 < G::KH || c + 1 < G::KW) continue;
      const unsigned top = r + 1 - G::KH, left = c + 1 - G::KW;
      if (top % G::SH || left % G::SW) continue;
      for (unsigned ky = 0; ky < G::KH; ky++)
        for (unsigned kx = 0; kx < G::KW; kx++)
          for (unsigned cf = 0; cf < CF; cf++) {
            QFLOW_HLS(PIPELINE II=1)
            out.write(rows[(top + ky) % G::KH][(left + kx) * CF + cf]);
          }
    }
  }
}

}  // namespace qflow

#endif  // QFLOW_WINDOW_HPP

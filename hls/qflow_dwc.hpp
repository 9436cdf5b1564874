// Stream width conversion between layers: words of InElems packed elements (a layer's PE)
// regrouped into words of OutElems elements (the next layer's SIMD), element order kept.
#ifndef QFLOW_DWC_HPP
#define QFLOW_DWC_HPP

#include "qflow_types.hpp"

namespace qflow {

// Moves G = gcd(InElems, OutElems) elements per cycle, so any pair of widths works and a
// plain up- or down-conversion takes max(words in, words out) cycles per vector.
template <unsigned InElems, unsigned OutElems, unsigned ElemBits, unsigned NElems>
void dwc(hls::stream<ap_uint<InElems * ElemBits>>& in,
         hls::stream<ap_uint<OutElems * ElemBits>>& out) {
  static_assert(NElems % InElems == 0 && NElems % OutElems == 0,
                "both word widths must divide the vector");
  constexpr unsigned G = gcd(InElems, OutElems);
  constexpr unsigned IN_CHUNKS = InElems / G, OUT_CHUNKS = OutElems / G;

  ap_uint<InElems * ElemBits> ibuf = 0;
  ap_uint<OutElems * ElemBits> obuf = 0;
  unsigned ichunk = 0, ochunk = 0;
  for (unsigned k = 0; k < NElems / G; k++) {
    QFLOW_HLS(PIPELINE II=1)
    if (ichunk == 0) ibuf = in.read();
    for (unsigned e = 0; e < G; e++) {
      QFLOW_HLS(UNROLL)
      set_field<ElemBits>(obuf, ochunk * G + e, field<ElemBits>(ibuf, ichunk * G + e));
    }
    ichunk = ichunk == IN_CHUNKS - 1 ? 0 : ichunk + 1;
    if (ochunk == OUT_CHUNKS - 1) {
      out.write(obuf);
      ochunk = 0;
    } else {
      ochunk++;
    }
  }
}

}  // namespace qflow

#endif  // QFLOW_DWC_HPP

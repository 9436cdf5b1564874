// Stream plumbing that passes words through unchanged: the fork, one stream feeding several
// consumers (a residual block's skip path and main branch), as FINN's DuplicateStreams_Batch.
// Width conversion, which regroups elements, is qflow_dwc.hpp.
#ifndef QFLOW_STREAM_HPP
#define QFLOW_STREAM_HPP

#include "qflow_types.hpp"

namespace qflow {

// One frame of Words words per call, each written once to every one of the N outputs, in
// order. Under DATAFLOW every output is its own FIFO and the loop stalls while any is full,
// so a stalled consumer delays the others but never makes them miss or repeat a word; the
// skip path's FIFO must be deep enough that the stall does not become a deadlock.
template <unsigned Words, unsigned N, class Word>
void fork(hls::stream<Word>& in, hls::stream<Word> (&out)[N]) {
  static_assert(N >= 2, "a fork has at least two outputs");
  for (unsigned i = 0; i < Words; i++) {
    QFLOW_HLS(PIPELINE II=1)
    const Word x = in.read();
    for (unsigned k = 0; k < N; k++) {
      QFLOW_HLS(UNROLL)
      out[k].write(x);
    }
  }
}

}  // namespace qflow

#endif  // QFLOW_STREAM_HPP

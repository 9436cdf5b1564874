// Activations applied by the MVAU to each finished accumulator, per PE and output fold:
// multi-threshold (hidden layers, FINN's MultiThreshold form) or the accumulator itself.
#ifndef QFLOW_ACTIVATION_HPP
#define QFLOW_ACTIVATION_HPP

#include "qflow_types.hpp"

namespace qflow {

// Hidden-layer activation: out = Base + Step * #{j : acc >= t[pe][nf][j]}, encoded as OT.
// Partition t completely in dims 1 (PE) and 3 (threshold) for II = 1.
template <unsigned PE, unsigned NF, unsigned NT, int TBits, class OT, int Base, int Step>
struct thresholds {
  using out_type = OT;
  ap_int<TBits> t[PE][NF][NT];

  template <class Acc>
  ap_uint<OT::bits> activate(unsigned nf, unsigned pe, const Acc& acc) const {
    ap_uint<bits_for(NT)> count = 0;
    for (unsigned j = 0; j < NT; j++) {
      QFLOW_HLS(UNROLL)
      if (acc >= t[pe][nf][j]) count += 1;
    }
    return OT::encode(Base + Step * int(count));
  }
};

// Last layer: the accumulator leaves the accelerator as Mul * acc + Add in OutBits signed
// bits; (1, 0) for arithmetic layers, (2, -MW) maps an XNOR popcount back to the sum.
template <unsigned OutBits, int Mul, int Add>
struct accumulator_out {
  using out_type = int_t<OutBits>;

  template <class Acc>
  ap_uint<OutBits> activate(unsigned, unsigned, const Acc& acc) const {
    return out_type::encode(Mul * acc + Add);
  }
};

}  // namespace qflow

#endif  // QFLOW_ACTIVATION_HPP

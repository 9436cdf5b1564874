// Requantization, the IR's second activation form (flow/ir/requant.py), applied by the
// MVAU / VVAU to each finished accumulator, in either of the IR's roundings:
// `requant_half_even` (below) or `requant`, TFLite's MultiplyByQuantizedMultiplier with
// double rounding, then the zero point and the clamp, as rtl/requant.sv computes it:
//   s = AccMul * acc + AccAdd + bias      ((2, -MW) maps an XNOR popcount back to the sum)
//   h = (s * 2^lsh * m + 2^30) >> 31      SRDHM: m >= 0, so TFLite's nudge and truncation
//                                          toward zero are rounding half up
//   r = (h + ((2^rsh - 1 + (h >= 0)) >> 1)) >> rsh      RDBPOT: half away from zero
//   y = clamp(ZeroPoint + r, ClampMin, ClampMax)
// Widths from the IR's bounds (flow/backends/requant.py): s fits SumBits; shifted left by
// at most LshMax it fits SumBits + LshMax <= 32 bits, so the product takes 63 bits at most
// (exact in the fallback types' int64_t). Partition bias, multiplier, lsh and rsh
// completely in dim 1 (PE) for II = 1.
#ifndef QFLOW_REQUANT_HPP
#define QFLOW_REQUANT_HPP

#include "qflow_types.hpp"

namespace qflow {

template <unsigned PE, unsigned NF, unsigned BiasBits, unsigned SumBits, unsigned LshMax,
          unsigned RshMax, class OT, int ZeroPoint, int ClampMin, int ClampMax, int AccMul = 1,
          int AccAdd = 0>
struct requant {
  static_assert(SumBits + LshMax <= 32, "the shifted sum must fit in 32 bits");
  static_assert(LshMax <= 30 && RshMax <= 31, "shifts outside -31..30");
  static constexpr unsigned ABits = SumBits + LshMax;  // the multiplier's signed input
  static constexpr unsigned RBits = (ABits > RshMax ? ABits : RshMax) + 1;  // h + nudge
  using out_type = OT;
  ap_int<BiasBits> bias[PE][NF];
  ap_uint<31> multiplier[PE][NF];  // 0 or in [2^30, 2^31)
  ap_uint<bits_for(LshMax)> lsh[PE][NF];
  ap_uint<bits_for(RshMax)> rsh[PE][NF];

  template <class Acc>
  ap_uint<OT::bits> activate(unsigned nf, unsigned pe, const Acc& acc) const {
    const ap_int<SumBits> sum = AccMul * acc + AccAdd + bias[pe][nf];
    const ap_int<ABits> a = sum * (ap_uint<LshMax + 1>(1) << lsh[pe][nf]);
    const ap_int<ABits + 31> product = a * multiplier[pe][nf];
    const ap_int<ABits> high = (product + ap_int<32>(1 << 30)) >> 31;
    const unsigned r = rsh[pe][nf];
    const ap_uint<RBits> nudge = ((ap_uint<RBits>(1) << r) - 1 + (high < 0 ? 0 : 1)) >> 1;
    const ap_int<RBits> rounded = (ap_int<RBits + 1>(high) + nudge) >> r;
    const ap_int<35> y = rounded + ZeroPoint;
    return OT::encode(y < ClampMin ? ap_int<35>(ClampMin)
                                   : y > ClampMax ? ap_int<35>(ClampMax) : y);
  }
};

// The IR's half_even rounding (flow/ir/requant.py): one rounding, half to even.
//   a = AccMul * acc + AccAdd              the sum, SumBits (the IR's accumulator bounds)
//   p = a * m + bias                       ProductBits: both a * m and p, every channel
//   r = (p + 2^(n-1) - 1 + ((p >> n) & 1)) >> n       RHE, n in 1..RshMax
//   y = clamp(ZeroPoint + r, ClampMin, ClampMax)
// |p| < 2^62 and the nudge is at most 2^61, so the rounding's sum is exact in the
// fallback's int64_t. Partition bias, multiplier and rsh completely in dim 1 (PE) for II = 1.
template <unsigned PE, unsigned NF, unsigned SumBits, unsigned BiasBits, unsigned ProductBits,
          unsigned RshMax, class OT, int ZeroPoint, int ClampMin, int ClampMax, int AccMul = 1,
          int AccAdd = 0>
struct requant_half_even {
  static_assert(SumBits <= 33 && BiasBits <= 64 && ProductBits <= 63,
                "|acc * m + bias| must stay below 2^62");
  static_assert(RshMax >= 1 && RshMax <= 62, "right shifts outside 1..62");
  // r + ZeroPoint: |r| <= |p| / 2 + 1 fits ProductBits
  static constexpr unsigned YBits = (ProductBits > 32 ? ProductBits : 32) + 1;
  using out_type = OT;
  ap_int<BiasBits> bias[PE][NF];
  ap_uint<31> multiplier[PE][NF];  // [0, 2^31)
  ap_uint<bits_for(RshMax)> rsh[PE][NF];

  template <class Acc>
  ap_uint<OT::bits> activate(unsigned nf, unsigned pe, const Acc& acc) const {
    const ap_int<SumBits> sum = AccMul * acc + AccAdd;
    const ap_int<ProductBits> p = sum * multiplier[pe][nf] + bias[pe][nf];
    const unsigned n = rsh[pe][nf];
    const ap_uint<1> odd = (p >> n) & 1;
    const ap_uint<RshMax> nudge = (ap_uint<RshMax>(1) << (n - 1)) - 1 + odd;
    const ap_int<ProductBits> rounded = (p + nudge) >> n;  // the sum widens: exact
    const ap_int<YBits> y = rounded + ZeroPoint;
    return OT::encode(y < ClampMin ? ap_int<YBits>(ClampMin)
                                   : y > ClampMax ? ap_int<YBits>(ClampMax) : y);
  }
};

}  // namespace qflow

#endif  // QFLOW_REQUANT_HPP

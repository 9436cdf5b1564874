// Integer and stream types of the qflow HLS templates, the HLS pragma macro, the IR's
// datatypes as C++ types, and bit fields of packed stream words.
//
// Types: Vitis HLS's ap_int.h / hls_stream.h when they are on the include path (or under
// synthesis), else the header-only fallback in qflow_fallback.hpp. Define
// QFLOW_VENDOR_TYPES to 1 or 0 to choose explicitly.
//
// Pragmas: written as QFLOW_HLS(PIPELINE II=1), which is `#pragma HLS PIPELINE II=1` under
// synthesis (the _Pragma form of UG1399, "Using #define with Pragma Directives") and
// nothing elsewhere: g++ -Wall -Werror rejects unknown pragmas, and before GCC 13
// `#pragma GCC diagnostic` cannot silence that warning in C++ (GCC bug 53431).
#ifndef QFLOW_TYPES_HPP
#define QFLOW_TYPES_HPP

#include <cstdint>
#include <type_traits>

#ifndef QFLOW_VENDOR_TYPES
#if defined(__SYNTHESIS__)
#define QFLOW_VENDOR_TYPES 1
#elif defined(__has_include)
#if __has_include(<ap_int.h>) && __has_include(<hls_stream.h>)
#define QFLOW_VENDOR_TYPES 1
#endif
#endif
#endif
#ifndef QFLOW_VENDOR_TYPES
#define QFLOW_VENDOR_TYPES 0
#endif

#if QFLOW_VENDOR_TYPES
#include <ap_int.h>
#include <hls_stream.h>
#else
#include "qflow_fallback.hpp"
#endif

#define QFLOW_PRAGMA_(...) _Pragma(#__VA_ARGS__)
#ifdef __SYNTHESIS__
#define QFLOW_HLS(...) QFLOW_PRAGMA_(HLS __VA_ARGS__)
#else
#define QFLOW_HLS(...)
#endif

namespace qflow {

// Widest accumulator, weight and activation the templates accept: with operands of at
// most 32 bits every product and partial sum is exact in the fallback's int64_t.
constexpr unsigned kMaxBits = 32;

constexpr unsigned gcd(unsigned a, unsigned b) { return b == 0 ? a : gcd(b, a % b); }

// Bits of an unsigned value holding 0..n.
constexpr unsigned bits_for(unsigned n) { return n < 2 ? 1 : 1 + bits_for(n / 2); }

// Bits of a two's complement value holding lo..hi (counting up from n).
constexpr unsigned signed_bits_for(int64_t lo, int64_t hi, unsigned n = 1) {
  return lo >= -(int64_t(1) << (n - 1)) && hi < (int64_t(1) << (n - 1))
             ? n
             : signed_bits_for(lo, hi, n + 1);
}

// Field i (B bits, counted from the least significant end) of a packed word.
template <unsigned B, int W>
ap_uint<B> field(const ap_uint<W>& word, unsigned i) {
  return word.range(B * i + B - 1, B * i);
}

// A weight table's word of B bits. Xilinx's ap_uint has no constexpr constructor: a static
// table of them is initialized by a constructor call a word, which g++ takes minutes to
// compile for a CNV's ~100k words. So in C simulation on those types a word of at most 64
// bits is the narrowest unsigned integer holding it (constant-initialized), converted
// exactly where it is read; under synthesis and on the fallback types it is ap_uint<B>.
#if QFLOW_VENDOR_TYPES && !defined(__SYNTHESIS__)
constexpr bool kPlainTableWords = true;
#else
constexpr bool kPlainTableWords = false;
#endif

template <unsigned B, bool Plain = kPlainTableWords && (B <= 64)>
struct table_word {
  using type = ap_uint<B>;
};

template <unsigned B>
struct table_word<B, true> {
  using type = typename std::conditional<
      (B <= 8), uint8_t,
      typename std::conditional<
          (B <= 16), uint16_t,
          typename std::conditional<(B <= 32), uint32_t, uint64_t>::type>::type>::type;
};

template <unsigned B>
using table_word_t = typename table_word<B>::type;

template <unsigned B, int W>
void set_field(ap_uint<W>& word, unsigned i, const ap_uint<B>& v) {
  word.range(B * i + B - 1, B * i) = v;
}

// The IR's datatypes: storage bits, the range of values, and the value of a stored field
// (decode) and back. BIPOLAR is one bit, 1 for +1 and 0 for -1; TERNARY is int_t<2>.
struct bipolar {
  static constexpr unsigned bits = 1;
  static constexpr int64_t min = -1, max = 1;
  static ap_int<2> decode(const ap_uint<1>& f) { return f ? 1 : -1; }
  template <class V>
  static ap_uint<1> encode(const V& v) { return v > 0 ? 1 : 0; }
};

template <unsigned N>
struct int_t {
  static_assert(N >= 1 && N <= kMaxBits, "INTn with n in 1..32");
  static constexpr unsigned bits = N;
  static constexpr int64_t min = -(int64_t(1) << (N - 1)), max = (int64_t(1) << (N - 1)) - 1;
  static ap_int<N> decode(const ap_uint<N>& f) { return ap_int<N>(f); }
  template <class V>
  static ap_uint<N> encode(const V& v) { return ap_uint<N>(v); }
};

template <unsigned N>
struct uint_t {
  static_assert(N >= 1 && N <= kMaxBits, "UINTn with n in 1..32");
  static constexpr unsigned bits = N;
  static constexpr int64_t min = 0, max = (int64_t(1) << N) - 1;
  static ap_uint<N> decode(const ap_uint<N>& f) { return f; }
  template <class V>
  static ap_uint<N> encode(const V& v) { return ap_uint<N>(v); }
};

using ternary = int_t<2>;

}  // namespace qflow

#endif  // QFLOW_TYPES_HPP

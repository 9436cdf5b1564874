// Header-only stand-ins for Vitis HLS's ap_int<N>, ap_uint<N> and hls::stream<T>, so that
// the qflow templates compile and C-simulate with plain g++ when the vendor headers are
// absent. Only the subset the templates use is provided, with the vendor semantics:
//   - a value is stored as its N-bit two's complement pattern; every construction and
//     assignment wraps to N bits (the vendor's default AP_WRAP for ap_int);
//   - arithmetic goes through int64_t: an N-bit value converts implicitly to int64_t and
//     the result wraps back to N bits when assigned. This is exact while every
//     intermediate fits in int64_t; the templates guarantee it by static_assert
//     (operands and accumulators of at most 32 bits: products < 2^63).
//   - values wider than 64 bits (packed stream words, weight words) support bit-field
//     access only: range(hi, lo) of at most 64 bits, and the ("0x...", 16) constructor.
// Included by qflow_types.hpp; do not include directly.
#ifndef QFLOW_FALLBACK_HPP
#define QFLOW_FALLBACK_HPP

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

// The vendor's width limit, so that C simulation here rejects what Vitis would.
#ifndef AP_INT_MAX_W
#define AP_INT_MAX_W 1024
#endif

namespace qflow {
namespace fallback {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "qflow fallback: %s\n", what);
  std::abort();
}

constexpr uint64_t low_mask(int n) { return n >= 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1; }

template <int W, bool Signed>
class ap_bits;

// Assignable view of bits [lo, hi] (at most 64) of a value, as ap_range_ref is.
template <int W, bool Signed>
class range_ref {
 public:
  range_ref(ap_bits<W, Signed>& v, int hi, int lo) : v_(v), hi_(hi), lo_(lo) {}
  operator uint64_t() const { return v_.get_bits(lo_, hi_ - lo_ + 1); }
  range_ref& operator=(uint64_t bits) {
    v_.set_bits(lo_, hi_ - lo_ + 1, bits);
    return *this;
  }

 private:
  ap_bits<W, Signed>& v_;
  int hi_, lo_;
};

template <int W, bool Signed>
class ap_bits {
  static_assert(W >= 1 && W <= AP_INT_MAX_W, "ap_int/ap_uint width outside 1..AP_INT_MAX_W");
  static constexpr int kWords = (W + 63) / 64;

 public:
  constexpr ap_bits() : w_{} {}

  // Wraps v to W bits; for W > 64 the sign of v extends into the upper words.
  constexpr ap_bits(int64_t v) : w_{} {  // implicit, as the vendor type's
    for (int k = 0; k < kWords; k++) w_[k] = k == 0 ? uint64_t(v) : (v < 0 ? ~uint64_t(0) : 0);
    w_[kWords - 1] &= low_mask(W - 64 * (kWords - 1));
  }

  template <int W2, bool S2>
  constexpr ap_bits(const ap_bits<W2, S2>& o) : ap_bits(int64_t(o)) {}  // implicit too

  // Hexadecimal text, optionally "0x"-prefixed, as the vendor's ap_uint<W>("0x..", 16).
  constexpr ap_bits(const char* text, int radix) : w_{} {
    if (radix != 16) fail("only radix 16 strings are supported");
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) text += 2;
    int n = 0;
    while (text[n]) n++;
    for (int i = 0; i < n && 4 * i < W; i++) {
      const char c = text[n - 1 - i];
      const int d = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) fail("bad hexadecimal digit");
      w_[4 * i / 64] |= uint64_t(d) << (4 * i % 64);
    }
    w_[kWords - 1] &= low_mask(W - 64 * (kWords - 1));
  }

  // The value as an integer; exact only up to 64 bits (63 unsigned).
  constexpr operator int64_t() const {
    static_assert(W <= 63 || (Signed && W == 64), "arithmetic on fallback ap_int is limited to 64 bits");
    const uint64_t raw = w_[0];
    if (Signed && W < 64 && ((raw >> (W - 1)) & 1)) return int64_t(raw | ~low_mask(W));
    return int64_t(raw);
  }

  template <class T>
  ap_bits& operator+=(const T& v) { return *this = ap_bits(int64_t(*this) + int64_t(v)); }
  template <class T>
  ap_bits& operator-=(const T& v) { return *this = ap_bits(int64_t(*this) - int64_t(v)); }

  range_ref<W, Signed> range(int hi, int lo) {
    check_range(hi, lo);
    return range_ref<W, Signed>(*this, hi, lo);
  }
  uint64_t range(int hi, int lo) const {
    check_range(hi, lo);
    return get_bits(lo, hi - lo + 1);
  }

  uint64_t get_bits(int lo, int n) const {
    const int k = lo / 64, s = lo % 64;
    uint64_t v = w_[k] >> s;
    if (kWords > 1 && s && s + n > 64) v |= w_[k + 1] << (64 - s);
    return v & low_mask(n);
  }

  void set_bits(int lo, int n, uint64_t bits) {
    const int k = lo / 64, s = lo % 64;
    bits &= low_mask(n);
    w_[k] = (w_[k] & ~(low_mask(n) << s)) | (bits << s);
    if (kWords > 1 && s && s + n > 64) {
      const int spill = s + n - 64;
      w_[k + 1] = (w_[k + 1] & ~low_mask(spill)) | (bits >> (64 - s));
    }
  }

 private:
  static void check_range(int hi, int lo) {
    if (lo < 0 || hi < lo || hi >= W || hi - lo >= 64) fail("range(hi, lo) outside the value or wider than 64 bits");
  }

  uint64_t w_[kWords];
};

}  // namespace fallback
}  // namespace qflow

template <int W>
using ap_int = qflow::fallback::ap_bits<W, true>;
template <int W>
using ap_uint = qflow::fallback::ap_bits<W, false>;

namespace hls {

// FIFO of unbounded depth, as hls::stream is in C simulation; reading an empty stream is a
// protocol error (a deadlock in hardware), so it stops the simulation.
template <class T>
class stream {
 public:
  stream() = default;
  explicit stream(const char* name) : name_(name) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  void write(const T& v) { q_.push_back(v); }
  T read() {
    if (q_.empty()) {
      std::fprintf(stderr, "hls::stream %s: read from an empty stream\n", name_.c_str());
      std::abort();
    }
    T v = q_.front();
    q_.pop_front();
    return v;
  }
  void read(T& v) { v = read(); }
  bool empty() const { return q_.empty(); }
  std::size_t size() const { return q_.size(); }
  stream& operator<<(const T& v) {
    write(v);
    return *this;
  }
  stream& operator>>(T& v) {
    v = read();
    return *this;
  }

 private:
  std::deque<T> q_;
  std::string name_ = "(unnamed)";
};

}  // namespace hls

#endif  // QFLOW_FALLBACK_HPP

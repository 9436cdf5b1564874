/* Popcount of x ^ w over bit-packed words, the inner loop of row-by-row XNOR layers (the
 * bit-sliced ones, qnn_dense_xnor_sliced.c, need none) and of bit-serial ones.
 *
 * RV32IMC and Xtensa LX6/LX7 have no popcount instruction, so the portable path is a
 * Harley-Seal carry-save tree over 8 words at a time (rows of 16 words and more) and SWAR
 * with the byte-wise counts of up to 30 words summed before one final fold (the rest). Where the core
 * has an instruction (x86 POPCNT, RISC-V Zbb), __builtin_popcount is one instruction; define
 * QNN_PORTABLE_POPCOUNT to force the portable path anyway (the tests build both).
 */
#ifndef QNN_POPCOUNT_H
#define QNN_POPCOUNT_H

#include <stdint.h>

/* the popcount loops must be inlined into each caller, where `use_and` and whether the
 * mask is NULL are constants (GCC -O2 otherwise calls one copy that tests them per word) */
#if defined(__GNUC__)
#define QNN_INLINE static inline __attribute__((always_inline))
#else
#define QNN_INLINE static inline
#endif

#if !defined(QNN_PORTABLE_POPCOUNT) && (defined(__POPCNT__) || defined(__riscv_zbb))
#define QNN_POPCOUNT_BUILTIN 1
#else
#define QNN_POPCOUNT_BUILTIN 0
#endif

/* per-nibble bit counts of v (each nibble 0..4) */
static inline uint32_t qnn_popcount_nibbles(uint32_t v)
{
    v -= (v >> 1) & 0x55555555u;
    return (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
}

/* nibble counts (each 0..8, so two of them may reach 16) -> byte counts */
static inline uint32_t qnn_nibbles_to_bytes(uint32_t v)
{
    return (v & 0x0F0F0F0Fu) + ((v >> 4) & 0x0F0F0F0Fu);
}

/* sum of the four bytes of v (each 0..255: no multiply trick, whose top byte wraps) */
static inline uint32_t qnn_sum_bytes(uint32_t v)
{
    v = (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
    return (v + (v >> 16)) & 0xFFFFu;
}

static inline uint32_t qnn_popcount32_portable(uint32_t v)
{
    return qnn_sum_bytes(qnn_nibbles_to_bytes(qnn_popcount_nibbles(v)));
}

/* a[k] ^ b[k] for XNOR layers, a[k] & b[k] for bit-serial ones, and with m[k] where a mask
 * is given (a window's padded taps); `use_and` and whether m is NULL are constants at
 * every call, so each caller gets its own loop */
#define QNN_COMBINE(use_and, u, v) ((use_and) ? (u) & (v) : (u) ^ (v))
#define QNN_WORD(use_and, a, b, m, k) \
    ((m) ? QNN_COMBINE(use_and, (a)[k], (b)[k]) & (m)[k] : QNN_COMBINE(use_and, (a)[k], (b)[k]))

#if !QNN_POPCOUNT_BUILTIN
/* popcount of a ^ b (or a & b) over n <= 30 words. Words go in pairs: the nibble counts of
 * two words add before one nibble-to-byte step; a byte of `bytes` gains at most 16 per
 * pair, so 15 pairs stay below 256. Loop bounds are hoisted so that a short row (64
 * inputs: 2 words) costs little beyond the SWAR itself. */
QNN_INLINE uint32_t qnn_popcount_block(const uint32_t *a, const uint32_t *b,
                                          const uint32_t *m, uint32_t n, const int use_and)
{
    const uint32_t *end = b + (n & ~1u);
    uint32_t bytes = 0;
    for (; b != end; a += 2, b += 2, m = m ? m + 2 : m)
        bytes += qnn_nibbles_to_bytes(qnn_popcount_nibbles(QNN_WORD(use_and, a, b, m, 0)) +
                                      qnn_popcount_nibbles(QNN_WORD(use_and, a, b, m, 1)));
    if (n & 1u)
        bytes += qnn_nibbles_to_bytes(qnn_popcount_nibbles(QNN_WORD(use_and, a, b, m, 0)));
    /* up to 7 words the total fits a byte and one multiply sums the four bytes */
    return n <= 7u ? (bytes * 0x01010101u) >> 24 : qnn_sum_bytes(bytes);
}
#endif

#if !QNN_POPCOUNT_BUILTIN
/* carry-save adder: h:l = a + b + c, bit by bit */
#define QNN_CSA(h, l, a, b, c)             \
    do {                                   \
        const uint32_t u_ = (a) ^ (b);     \
        h = ((a) & (b)) | (u_ & (c));      \
        l = u_ ^ (c);                      \
    } while (0)

/* Harley-Seal: the words go through a carry-save tree 8 at a time, so that only one word
 * in 8 (the eights) takes a SWAR count; ones, twos and fours are counted once at the end.
 * Per 8 words: 16 loads, 8 combines, 7 CSAs (35 operations), one SWAR count; against 8
 * SWAR counts word by word. n_groups <= 31 keeps every byte of `eights` below 256. */
QNN_INLINE uint32_t qnn_popcount_csa(const uint32_t *a, const uint32_t *b,
                                        const uint32_t *m, uint32_t groups, const int use_and)
{
    uint32_t ones = 0, twos = 0, fours = 0, eights = 0, bytes;
    for (; groups; groups--, a += 8, b += 8, m = m ? m + 8 : m) {
        uint32_t ta, tb, fa, fb, e;
        QNN_CSA(ta, ones, ones, QNN_WORD(use_and, a, b, m, 0), QNN_WORD(use_and, a, b, m, 1));
        QNN_CSA(tb, ones, ones, QNN_WORD(use_and, a, b, m, 2), QNN_WORD(use_and, a, b, m, 3));
        QNN_CSA(fa, twos, twos, ta, tb);
        QNN_CSA(ta, ones, ones, QNN_WORD(use_and, a, b, m, 4), QNN_WORD(use_and, a, b, m, 5));
        QNN_CSA(tb, ones, ones, QNN_WORD(use_and, a, b, m, 6), QNN_WORD(use_and, a, b, m, 7));
        QNN_CSA(fb, twos, twos, ta, tb);
        QNN_CSA(e, fours, fours, fa, fb);
        eights += qnn_nibbles_to_bytes(qnn_popcount_nibbles(e));
    }
    /* per byte: ones + 2 twos <= 24, 4 fours <= 32 */
    bytes = qnn_nibbles_to_bytes(qnn_popcount_nibbles(ones) + (qnn_popcount_nibbles(twos) << 1))
            + (qnn_nibbles_to_bytes(qnn_popcount_nibbles(fours)) << 2);
    return qnn_sum_bytes(bytes) + (qnn_sum_bytes(eights) << 3);
}
#endif

/* number of bits set in a[k] ^ b[k] (or a[k] & b[k]) over n words */
QNN_INLINE uint32_t qnn_popcount_words(const uint32_t *a, const uint32_t *b,
                                          const uint32_t *m, uint32_t n, const int use_and)
{
#if QNN_POPCOUNT_BUILTIN
    uint32_t k, total = 0;
    for (k = 0; k < n; k++)
        total += (uint32_t)__builtin_popcount(QNN_WORD(use_and, a, b, m, k));
    return total;
#else
    uint32_t total = 0, groups;
    if (n < 16u) /* short rows: the carry-save tree's final counts would not pay off */
        return qnn_popcount_block(a, b, m, n, use_and);
    for (; n >= 8u; n -= 8u * groups, a += 8u * groups, b += 8u * groups,
                    m = m ? m + 8u * groups : m) {
        groups = n / 8u < 31u ? n / 8u : 31u;
        total += qnn_popcount_csa(a, b, m, groups, use_and);
    }
    return total + qnn_popcount_block(a, b, m, n, use_and);
#endif
}

QNN_INLINE uint32_t qnn_popcount_xor(const uint32_t *a, const uint32_t *b, uint32_t n)
{
    return qnn_popcount_words(a, b, (const uint32_t *)0, n, 0);
}

/* popcount of (a ^ b) & m: the mismatches of a window's real taps */
QNN_INLINE uint32_t qnn_popcount_xor_masked(const uint32_t *a, const uint32_t *b,
                                               const uint32_t *m, uint32_t n)
{
    return qnn_popcount_words(a, b, m, n, 0);
}

QNN_INLINE uint32_t qnn_popcount_and(const uint32_t *a, const uint32_t *b, uint32_t n)
{
    return qnn_popcount_words(a, b, (const uint32_t *)0, n, 1);
}

#endif /* QNN_POPCOUNT_H */

/* Popcount of x ^ w over bit-packed words, the inner loop of XNOR layers.
 *
 * RV32IMC and Xtensa LX6/LX7 have no popcount instruction, so the portable path is SWAR
 * with the byte-wise counts of up to 30 words summed before one final fold. Where the core
 * has an instruction (x86 POPCNT, RISC-V Zbb), __builtin_popcount is one instruction; define
 * QNN_PORTABLE_POPCOUNT to force the portable path anyway (the tests build both).
 */
#ifndef QNN_POPCOUNT_H
#define QNN_POPCOUNT_H

#include <stdint.h>

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
static inline uint32_t qnn_popcount_block(const uint32_t *a, const uint32_t *b,
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

/* number of bits set in a[k] ^ b[k] (or a[k] & b[k]) over n words */
static inline uint32_t qnn_popcount_words(const uint32_t *a, const uint32_t *b,
                                          const uint32_t *m, uint32_t n, const int use_and)
{
#if QNN_POPCOUNT_BUILTIN
    uint32_t k, total = 0;
    for (k = 0; k < n; k++)
        total += (uint32_t)__builtin_popcount(QNN_WORD(use_and, a, b, m, k));
    return total;
#else
    uint32_t total = 0;
    if (n <= 30u) /* in <= 960: one block, no chunk loop */
        return qnn_popcount_block(a, b, m, n, use_and);
    for (; n > 30u; n -= 30u, a += 30, b += 30, m = m ? m + 30 : m)
        total += qnn_popcount_block(a, b, m, 30u, use_and);
    return total + qnn_popcount_block(a, b, m, n, use_and);
#endif
}

static inline uint32_t qnn_popcount_xor(const uint32_t *a, const uint32_t *b, uint32_t n)
{
    return qnn_popcount_words(a, b, (const uint32_t *)0, n, 0);
}

/* popcount of (a ^ b) & m: the mismatches of a window's real taps */
static inline uint32_t qnn_popcount_xor_masked(const uint32_t *a, const uint32_t *b,
                                               const uint32_t *m, uint32_t n)
{
    return qnn_popcount_words(a, b, m, n, 0);
}

static inline uint32_t qnn_popcount_and(const uint32_t *a, const uint32_t *b, uint32_t n)
{
    return qnn_popcount_words(a, b, (const uint32_t *)0, n, 1);
}

#endif /* QNN_POPCOUNT_H */

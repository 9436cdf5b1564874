/* BIPOLAR weights (bits) x multi-bit inputs, bit-serial. The inputs are split once per
 * layer into bit planes X_k of u = x (unsigned inputs) or u = x + 2^(b-1) (signed: the top
 * plane inverted), so that the sum of u over a row's +1 weights is
 * sum_k 2^k * popcount(W & X_k); the generator folds the 2^(b-1) per +1 weight into the
 * row's bias. On RV32IMC that measured about 6 instructions per MAC for UINT8 inputs
 * (bench/bench_firmware.py), where adding or subtracting input by input took about 10. */
#include "qnn_internal.h"
#include "qnn_popcount.h"

/* planes[j * bits + k]: bit k of u for inputs 32j .. 32j + 31, LSB first, tail bits 0 */
static void split_planes(const int8_t *x, uint32_t in, uint32_t bits, uint32_t invert_top,
                         uint32_t *planes)
{
    const uint32_t words = (in + 31u) >> 5;
    uint32_t j, k, i;
    for (j = 0; j < words; j++) {
        const uint32_t first = 32u * j, n = in - first < 32u ? in - first : 32u;
        for (k = 0; k < bits; k++) {
            const uint32_t flip = (invert_top && k + 1u == bits) ? 1u : 0u;
            uint32_t word = 0;
            for (i = n; i-- > 0;)
                word = word << 1 | ((((uint32_t)(uint8_t)x[first + i] >> k) & 1u) ^ flip);
            *planes++ = word;
        }
    }
}

/* sum_k 2^k popcount(w & p[k]) for one word: planes in pairs, the nibble counts of plane
 * k + 1 doubled and added to plane k's (at most 4 + 8 per nibble) before one fold */
static inline int32_t weighted_count(uint32_t w, const uint32_t *p, uint32_t bits)
{
    int32_t sum = 0;
    uint32_t k;
    for (k = 0; k + 2u <= bits; k += 2u) {
        uint32_t v = qnn_popcount_nibbles(w & p[k]) +
                     (qnn_popcount_nibbles(w & p[k + 1u]) << 1);
        sum += (int32_t)(((qnn_nibbles_to_bytes(v) * 0x01010101u) >> 24) << k);
    }
    if (bits & 1u)
        sum += (int32_t)(((qnn_nibbles_to_bytes(qnn_popcount_nibbles(w & p[k])) * 0x01010101u)
                          >> 24) << k);
    return sum;
}

void qnn_dense_bipolar_weights(const qnn_dense_t *L, const int8_t *x, void *y,
                               uint32_t *scratch)
{
    const uint32_t in = L->in, bits = L->in_bits;
    const uint32_t words = (in + 31u) >> 5;
    const uint32_t *w = (const uint32_t *)L->weights;
    const int32_t sum_x = qnn_sum_i8(x, in);
    uint32_t word = 0;
    uint32_t o, j;
    split_planes(x, in, bits, L->in_signed, scratch);
    for (o = 0; o < L->out; o++) {
        /* sum of u where w = +1; acc = 2 * (that - 2^(b-1) * #(+1)) - sum_x, the middle
         * term being in the bias */
        int32_t plus = 0;
        const uint32_t *p = scratch;
        for (j = 0; j < words; j++, p += bits)
            plus += weighted_count(*w++, p, bits);
        qnn_emit(L, o, 2 * plus - sum_x, y, &word);
    }
}

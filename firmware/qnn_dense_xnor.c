/* BIPOLAR x BIPOLAR dense layer: XNOR + popcount over 32 weights a word. */
#include "qnn_internal.h"
#include "qnn_popcount.h"

/* the usual binary layer: output bit = (p >= threshold), 32 bits per store; the threshold
 * moves to the mismatch count: p >= t <=> in - t >= mismatches. `words` is a constant
 * where the caller knows it, so that a short row's popcount is straight-line code with
 * the input's words loaded once for all rows. */
QNN_INLINE void bit_rows(const qnn_dense_t *L, const uint32_t *x, uint32_t *bits,
                         const uint32_t words)
{
    const uint32_t out = L->out;
    const int32_t in = L->in;
    const int32_t *t = L->thresholds;
    const uint32_t *w = (const uint32_t *)L->weights;
    uint32_t o;
    for (o = 0; o < out; o += 32u) {
        uint32_t k, n = out - o < 32u ? out - o : 32u, word = 0;
        for (k = 0; k < n; k++, w += words) {
            int32_t m = (int32_t)qnn_popcount_xor(x, w, words);
            word |= (uint32_t)(m <= in - t[o + k]) << k;
        }
        *bits++ = word;
    }
}

void qnn_dense_xnor(const qnn_dense_t *L, const uint32_t *x, void *y)
{
    const uint32_t words = ((uint32_t)L->in + 31u) >> 5, out = L->out;
    const int32_t in = L->in;
    const uint32_t *w = (const uint32_t *)L->weights;
    /* thresholds are on p; the accumulator itself leaves or is requantized */
    const int acc_out = L->out_kind == QNN_OUT_ACC || L->out_kind == QNN_OUT_REQUANT;
    uint32_t word = 0;
    uint32_t o;
    /* padding bits are 0 in both x and w, so x ^ w counts only real mismatches */
    if (L->out_kind == QNN_OUT_BITS && L->count == 1 && !L->bias && L->base <= 0 &&
        L->base + L->step > 0) {
        switch (words) { /* rows of up to 64 inputs (hidden layers of TFC-like nets) */
        case 1: bit_rows(L, x, (uint32_t *)y, 1u); break;
        case 2: bit_rows(L, x, (uint32_t *)y, 2u); break;
        default: bit_rows(L, x, (uint32_t *)y, words); break;
        }
        return;
    }
    for (o = 0; o < out; o++, w += words) {
        int32_t p = in - (int32_t)qnn_popcount_xor(x, w, words);
        qnn_emit(L, o, acc_out ? 2 * p - in : p, y, &word);
    }
}

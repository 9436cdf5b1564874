/* BIPOLAR x BIPOLAR dense layer: XNOR + popcount over 32 weights a word, row by row: the
 * accumulators of a last layer, multi-bit activations (bits out by one threshold go to the
 * bit-sliced qnn_dense_xnor_sliced). */
#include "qnn_internal.h"
#include "qnn_popcount.h"

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
    for (o = 0; o < out; o++, w += words) {
        int32_t p = in - (int32_t)qnn_popcount_xor(x, w, words);
        qnn_emit(L, o, acc_out ? 2 * p - in : p, y, &word);
    }
}

/* int8 weights x int8 inputs: multiply-accumulate, eight output rows per input load. */
#include "qnn_internal.h"

#if QNN_INT8_ROWS != 8
#error "qnn_dense_int8 is written out for 8 rows per block"
#endif

void qnn_dense_int8(const qnn_dense_t *L, const int8_t *x, void *y)
{
    const uint32_t in = L->in;
    const int8_t *w = (const int8_t *)L->weights;
    const int32_t start = L->w_offset ? L->w_offset * qnn_sum_i8(x, in) : 0;
    uint32_t word = 0;
    uint32_t o = 0, i;
    /* one input feeds 8 rows: a load, then 8 x (load, multiply, add); eight named
     * accumulators because GCC keeps an array of them in memory. (Unrolling two inputs
     * measured no better: the 16 hoisted loads spill registers on RV32.) */
    for (; o + QNN_INT8_ROWS <= L->out; o += QNN_INT8_ROWS) {
        int32_t a0 = start, a1 = start, a2 = start, a3 = start;
        int32_t a4 = start, a5 = start, a6 = start, a7 = start;
        for (i = 0; i < in; i++, w += QNN_INT8_ROWS) {
            int32_t xi = x[i];
            a0 += xi * w[0], a1 += xi * w[1], a2 += xi * w[2], a3 += xi * w[3];
            a4 += xi * w[4], a5 += xi * w[5], a6 += xi * w[6], a7 += xi * w[7];
        }
        qnn_emit8(L, o, a0, a1, a2, a3, a4, a5, a6, a7, y, &word);
    }
    for (; o < L->out; o++) {
        int32_t acc = start;
        for (i = 0; i < in; i++)
            acc += x[i] * *w++;
        qnn_emit(L, o, acc, y, &word);
    }
}

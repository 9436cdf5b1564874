/* int8 weights x int8 inputs, two multiply-accumulates per 32-bit multiply (SWAR).
 *
 * Inputs go in pairs X = c + d * 2^16 (c = x[2j], d = x[2j+1], packed once per layer into
 * scratch), weights as A = -(a * 2^16 + b) (a = w[o][2j], b = w[o][2j+1], generated). Mod
 * 2^32, which is what a 32-bit multiply keeps, A * X = G + D * 2^16 with G = -b*c and
 * D = -(a*c + b*d): the a*d * 2^32 term drops out. With G + 2^15 in [0, 2^16) and D in
 * [-2^15, 2^15), (A * X + 2^15) >> 16 (arithmetic) is D exactly (qnn_pair_dot). The
 * generator checks both on the weights and the inputs' stored range
 * (flow/backends/firmware/weights.py, pairs_fit); the negation is what makes every int8
 * pair fit: for a, b in [-128, 127] and c, d in
 * [-128, 127], D lies in [-32768, 32512] (unnegated, a = b = c = d = -128 gives 32768).
 * On RV32IMC a pair costs one load of X per block and per row a load, mul, add, srai and
 * sub: two MACs (bench/bench_firmware.py measures whole layers). */
#include "qnn_internal.h"

#if QNN_INT8_PAIR_ROWS != 8
#error "qnn_dense_int8_pairs is written out for 8 rows per block"
#endif

#define QNN_PAIR_ROW(r) acc##r -= qnn_pair_dot(w[r], x0)

void qnn_dense_int8_pairs(const qnn_dense_t *L, const int8_t *x, void *y, uint32_t *scratch)
{
    const uint32_t pairs = ((uint32_t)L->in + 1u) >> 1;
    const int32_t start = L->w_offset ? L->w_offset * qnn_sum_i8(x, L->in) : 0;
    const uint32_t *w = (const uint32_t *)L->weights;
    const uint32_t *xp, *const end = scratch + pairs;
    const int8_t *const x_end = x + (L->in & ~1u);
    uint32_t *s = scratch;
    uint32_t word = 0;
    uint32_t o = 0;
    /* x as pairs X = c + d * 2^16, an odd last input with d = 0 (its weight b is 0 too) */
    for (; x != x_end; x += 2, s++)
        *s = (uint32_t)x[0] + ((uint32_t)x[1] << 16);
    if (L->in & 1u)
        *s = (uint32_t)x[0];
    /* one input pair feeds 8 rows, in named accumulators (GCC keeps an array of them in
     * memory). More rows measured worse on the bench's layer: GCC -O2 hoists every row's
     * load to the top of the loop and spills registers from 9 rows on. */
    for (; o + QNN_INT8_PAIR_ROWS <= L->out; o += QNN_INT8_PAIR_ROWS) {
        int32_t acc0 = start, acc1 = start, acc2 = start, acc3 = start;
        int32_t acc4 = start, acc5 = start, acc6 = start, acc7 = start;
        for (xp = scratch; xp != end; xp++, w += QNN_INT8_PAIR_ROWS) {
            const uint32_t x0 = *xp;
            QNN_PAIR_ROW(0); QNN_PAIR_ROW(1); QNN_PAIR_ROW(2); QNN_PAIR_ROW(3);
            QNN_PAIR_ROW(4); QNN_PAIR_ROW(5); QNN_PAIR_ROW(6); QNN_PAIR_ROW(7);
        }
        qnn_emit8(L, o, acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, y, &word);
    }
    for (; o < L->out; o++) { /* the last rows, row-major */
        int32_t acc = start;
        for (xp = scratch; xp != end; xp++, w++)
            acc -= qnn_pair_dot(*w, *xp);
        qnn_emit(L, o, acc, y, &word);
    }
}

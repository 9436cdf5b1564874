/* int8 weights x int8 inputs, two multiply-accumulates per 32-bit multiply (SWAR).
 *
 * Inputs go in pairs X = c + d * 2^16 (c = x[2j], d = x[2j+1], packed once per layer into
 * scratch), weights as A = -(a * 2^16 + b) (a = w[o][2j], b = w[o][2j+1], generated). Mod
 * 2^32, which is what a 32-bit multiply keeps, A * X = G + D * 2^16 with G = -b*c and
 * D = -(a*c + b*d): the a*d * 2^32 term drops out. With G + 2^15 in [0, 2^16) and D in
 * [-2^15, 2^15), (A * X + 2^15) >> 16 (arithmetic) is D exactly. The generator checks both
 * on the weights and the inputs' stored range (flow/backends/firmware.py, pairs_fit); the
 * negation is what makes every int8 pair fit: for a, b in [-128, 127] and c, d in
 * [-128, 127], D lies in [-32768, 32512] (unnegated, a = b = c = d = -128 gives 32768).
 * On RV32IMC a pair costs one load of X per block and per row a load, mul, add, srai and
 * sub: two MACs (bench/bench_firmware.py measures whole layers). */
#include "qnn_internal.h"
#include "qnn_popcount.h" /* QNN_INLINE */

/* C99 leaves both implementation-defined; GCC and Clang (and so ESP-IDF) convert an
 * out-of-range unsigned value to int32_t modulo 2^32 and shift a negative int32_t right
 * arithmetically (sign bits in). A compiler doing otherwise fails here. */
typedef char qnn_int8_pairs_needs_wrapping_conversion[(int32_t)0xFFFF8000u == -32768 ? 1 : -1];
typedef char qnn_int8_pairs_needs_arithmetic_shift[(-65536 >> 16) == -1 ? 1 : -1];

/* D from one packed weight pair and input pair; unsigned multiply: no signed overflow */
static inline int32_t pair_dot(uint32_t a, uint32_t x)
{
    return (int32_t)(a * x + 0x8000u) >> 16;
}

#if QNN_INT8_PAIR_ROWS != 8
#error "qnn_dense_int8_pairs is written out for 8 rows per block"
#endif

/* x (in int8) as pairs X = c + d * 2^16 into every `stride`-th word of s, an odd last input
 * with d = 0 (its weight b is 0 too) */
static void pack_pairs(const int8_t *x, uint32_t in, uint32_t *s, uint32_t stride)
{
    const int8_t *const x_end = x + (in & ~1u);
    for (; x != x_end; x += 2, s += stride)
        *s = (uint32_t)x[0] + ((uint32_t)x[1] << 16);
    if (in & 1u)
        *s = (uint32_t)x[0];
}

#define QNN_PAIR_ROW(r) acc##r -= pair_dot(w[r], x0)
/* row r for position 0 (acc) and position 1 (bcc): one weight load feeds both */
#define QNN_PAIR_ROW2(r)                  \
    do {                                  \
        const uint32_t a_ = w[r];         \
        acc##r -= pair_dot(a_, x0);       \
        bcc##r -= pair_dot(a_, x1);       \
    } while (0)

/* rows o .. o + 3 (weights w, interleaved by 8) for both positions, whose pairs alternate
 * in p (8 accumulators: 8 rows x 2 positions would spill on RV32) */
static inline void half_block(const qnn_dense_t *L, uint32_t o, const uint32_t *w,
                              const uint32_t *p, uint32_t pairs, int32_t start0,
                              int32_t start1, void *y0, void *y1, uint32_t *word0,
                              uint32_t *word1)
{
    const uint32_t *xp, *const end = p + 2u * pairs;
    int32_t acc0 = start0, acc1 = start0, acc2 = start0, acc3 = start0;
    int32_t bcc0 = start1, bcc1 = start1, bcc2 = start1, bcc3 = start1;
    for (xp = p; xp != end; xp += 2, w += QNN_INT8_PAIR_ROWS) {
        const uint32_t x0 = xp[0], x1 = xp[1];
        QNN_PAIR_ROW2(0); QNN_PAIR_ROW2(1); QNN_PAIR_ROW2(2); QNN_PAIR_ROW2(3);
    }
    qnn_emit(L, o, acc0, y0, word0), qnn_emit(L, o + 1u, acc1, y0, word0);
    qnn_emit(L, o + 2u, acc2, y0, word0), qnn_emit(L, o + 3u, acc3, y0, word0);
    qnn_emit(L, o, bcc0, y1, word1), qnn_emit(L, o + 1u, bcc1, y1, word1);
    qnn_emit(L, o + 2u, bcc2, y1, word1), qnn_emit(L, o + 3u, bcc3, y1, word1);
}

/* GCC's first scheduling pass hoists every weight load of an iteration ahead of the
 * multiplies, which with 16 accumulators spills registers on RV32 (82 instructions an
 * iteration, measured); without it the loop below takes 75 (4 + 4 loads, 64 for 16 pairs,
 * 3 of loop) for 32 MACs. noinline: GCC inlines no function of other optimize options. */
#if defined(__GNUC__) && !defined(__clang__)
#define QNN_FOUR_POSITIONS static __attribute__((noinline, optimize("no-schedule-insns")))
#else
#define QNN_FOUR_POSITIONS static
#endif

#define QNN_PAIR_ROW4(r)                  \
    do {                                  \
        const uint32_t a_ = w[r];         \
        acc##r -= pair_dot(a_, x0);       \
        bcc##r -= pair_dot(a_, x1);       \
        ccc##r -= pair_dot(a_, x2);       \
        dcc##r -= pair_dot(a_, x3);       \
    } while (0)

/* rows o .. o + 3 (weights w, interleaved by 8) for four positions, whose pairs are
 * interleaved by 4 in p: sums[4 * position + row], from start[position] */
QNN_FOUR_POSITIONS void quarter_block(const uint32_t *w, const uint32_t *p, uint32_t pairs,
                                      const int32_t *start, int32_t *sums)
{
    const uint32_t *xp, *const end = p + 4u * pairs;
    int32_t acc0 = start[0], acc1 = start[0], acc2 = start[0], acc3 = start[0];
    int32_t bcc0 = start[1], bcc1 = start[1], bcc2 = start[1], bcc3 = start[1];
    int32_t ccc0 = start[2], ccc1 = start[2], ccc2 = start[2], ccc3 = start[2];
    int32_t dcc0 = start[3], dcc1 = start[3], dcc2 = start[3], dcc3 = start[3];
    for (xp = p; xp != end; xp += 4, w += QNN_INT8_PAIR_ROWS) {
        const uint32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        QNN_PAIR_ROW4(0); QNN_PAIR_ROW4(1); QNN_PAIR_ROW4(2); QNN_PAIR_ROW4(3);
    }
    sums[0] = acc0, sums[1] = acc1, sums[2] = acc2, sums[3] = acc3;
    sums[4] = bcc0, sums[5] = bcc1, sums[6] = bcc2, sums[7] = bcc3;
    sums[8] = ccc0, sums[9] = ccc1, sums[10] = ccc2, sums[11] = ccc3;
    sums[12] = dcc0, sums[13] = dcc1, sums[14] = dcc2, sums[15] = dcc3;
}

void qnn_int8_pairs_four(const qnn_dense_t *L, const int8_t *const x[4], void *const y[4],
                         uint32_t *scratch)
{
    const uint32_t pairs = ((uint32_t)L->in + 1u) >> 1;
    const uint32_t *w = (const uint32_t *)L->weights;
    int32_t start[4], sums[16];
    uint32_t word[4] = {0, 0, 0, 0};
    uint32_t o = 0, k, r, h;
    for (k = 0; k < 4u; k++) {
        start[k] = L->w_offset ? L->w_offset * qnn_sum_i8(x[k], L->in) : 0;
        pack_pairs(x[k], L->in, scratch + k, 4u);
    }
    for (; o + QNN_INT8_PAIR_ROWS <= L->out; o += QNN_INT8_PAIR_ROWS) {
        for (h = 0; h < 2u; h++) { /* a block's rows in two halves of 4 */
            quarter_block(w + 4u * h, scratch, pairs, start, sums);
            for (k = 0; k < 4u; k++)
                for (r = 0; r < 4u; r++)
                    qnn_emit(L, o + 4u * h + r, sums[4u * k + r], y[k], &word[k]);
        }
        w += QNN_INT8_PAIR_ROWS * pairs;
    }
    for (; o < L->out; o++, w += pairs) /* the last rows, row-major */
        for (k = 0; k < 4u; k++) {
            int32_t acc = start[k];
            const uint32_t *xp = scratch + k;
            for (r = 0; r < pairs; r++, xp += 4)
                acc -= pair_dot(w[r], *xp);
            qnn_emit(L, o, acc, y[k], &word[k]);
        }
}

/* all rows over packed pairs p (with `two`, two positions' pairs alternating) */
QNN_INLINE void pair_rows(const qnn_dense_t *L, const uint32_t *p, int32_t start0,
                          int32_t start1, void *y0, void *y1, const int two)
{
    const uint32_t pairs = ((uint32_t)L->in + 1u) >> 1, stride = two ? 2u : 1u;
    const uint32_t *w = (const uint32_t *)L->weights;
    const uint32_t *xp, *const end = p + stride * pairs;
    uint32_t word0 = 0, word1 = 0;
    uint32_t o = 0;
    /* one input pair feeds 8 rows, in named accumulators (GCC keeps an array of them in
     * memory). More rows measured worse on the bench's layer: GCC -O2 hoists every row's
     * load to the top of the loop and spills registers from 9 rows on; so two positions
     * take a block in two halves of 4 rows (a weight load feeds two multiplies). */
    for (; o + QNN_INT8_PAIR_ROWS <= L->out; o += QNN_INT8_PAIR_ROWS) {
        int32_t acc0 = start0, acc1 = start0, acc2 = start0, acc3 = start0;
        int32_t acc4 = start0, acc5 = start0, acc6 = start0, acc7 = start0;
        if (two) {
            half_block(L, o, w, p, pairs, start0, start1, y0, y1, &word0, &word1);
            half_block(L, o + 4u, w + 4, p, pairs, start0, start1, y0, y1, &word0, &word1);
            w += QNN_INT8_PAIR_ROWS * pairs;
            continue;
        }
        for (xp = p; xp != end; xp++, w += QNN_INT8_PAIR_ROWS) {
            const uint32_t x0 = xp[0];
            QNN_PAIR_ROW(0); QNN_PAIR_ROW(1); QNN_PAIR_ROW(2); QNN_PAIR_ROW(3);
            QNN_PAIR_ROW(4); QNN_PAIR_ROW(5); QNN_PAIR_ROW(6); QNN_PAIR_ROW(7);
        }
        qnn_emit8(L, o, acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, y0, &word0);
    }
    for (; o < L->out; o++) {
        int32_t acc0 = start0, bcc0 = start1;
        for (xp = p; xp != end; xp += stride, w++) {
            acc0 -= pair_dot(*w, xp[0]);
            if (two)
                bcc0 -= pair_dot(*w, xp[1]);
        }
        qnn_emit(L, o, acc0, y0, &word0);
        if (two)
            qnn_emit(L, o, bcc0, y1, &word1);
    }
}

void qnn_dense_int8_pairs(const qnn_dense_t *L, const int8_t *x, void *y, uint32_t *scratch)
{
    const int32_t start = L->w_offset ? L->w_offset * qnn_sum_i8(x, L->in) : 0;
    pack_pairs(x, L->in, scratch, 1u);
    pair_rows(L, scratch, start, 0, y, y, 0);
}

void qnn_int8_pairs_pair(const qnn_dense_t *L, const int8_t *x0, const int8_t *x1, void *y0,
                         void *y1, uint32_t *scratch)
{
    const int32_t start0 = L->w_offset ? L->w_offset * qnn_sum_i8(x0, L->in) : 0;
    const int32_t start1 = L->w_offset ? L->w_offset * qnn_sum_i8(x1, L->in) : 0;
    pack_pairs(x0, L->in, scratch, 2u);
    pack_pairs(x1, L->in, scratch + 1, 2u);
    pair_rows(L, scratch, start0, start1, y0, y1, 1);
}

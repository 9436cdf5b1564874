/* Helpers shared by the dense kernels: storing one output channel, summing the inputs. */
#ifndef QNN_INTERNAL_H
#define QNN_INTERNAL_H

#include "qnn.h"

/* Channel o's requantized code (qnn_requant.c; out of line, so that qnn_emit stays small
 * enough for GCC to inline into every kernel: inlined, it cost the int8 dense kernel 24
 * instructions per channel on RV32, measured) */
int8_t qnn_requant_code(const qnn_requant_t *r, uint32_t o, int32_t acc);

/* Store channel o's result. Channels come in order 0, 1, ...; BIPOLAR outputs collect in
 * *word and are written a whole word at a time (tail bits 0, as the next layer needs). */
static inline void qnn_emit(const qnn_dense_t *L, uint32_t o, int32_t acc, void *y,
                            uint32_t *word)
{
    int32_t v;
    if (L->bias)
        acc += L->bias[o];
    if (L->out_kind == QNN_OUT_ACC) {
        ((int32_t *)y)[o] = acc;
        return;
    }
    if (L->out_kind == QNN_OUT_REQUANT) {
        ((int8_t *)y)[o] = qnn_requant_code(&L->requant, o, acc);
        return;
    }
    if (L->count == 1)
        v = L->base + (acc >= L->thresholds[o] ? L->step : 0);
    else
        v = L->base + L->step * (int32_t)qnn_threshold_count(L->thresholds + o * L->count,
                                                             L->count, acc);
    if (L->out_kind == QNN_OUT_INT8) {
        ((int8_t *)y)[o] = (int8_t)v;
        return;
    }
    *word |= (uint32_t)(v > 0) << (o & 31u);
    if ((o & 31u) == 31u || o + 1u == L->out) {
        ((uint32_t *)y)[o >> 5] = *word;
        *word = 0;
    }
}

/* Store channels o .. o + 7, a block of eight rows kept in named accumulators (GCC keeps
 * an array of accumulators in memory inside the loop; gathered here once per block). */
static inline void qnn_emit8(const qnn_dense_t *L, uint32_t o, int32_t a0, int32_t a1,
                             int32_t a2, int32_t a3, int32_t a4, int32_t a5, int32_t a6,
                             int32_t a7, void *y, uint32_t *word)
{
    const int32_t acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    uint32_t r;
    for (r = 0; r < 8u; r++)
        qnn_emit(L, o + r, acc[r], y, word);
}

/* qnn_dense_bipolar_table on two inputs at once (two windows of a convolution): scratch
 * holds both inputs' tables */
void qnn_bipolar_table_pair(const qnn_dense_t *L, const int8_t *x0, const int8_t *x1,
                            void *y0, void *y1, uint32_t *scratch);

/* ---- int8 pairs (qnn_dense_int8_pairs.c, qnn_conv_int8.c) ---- */

/* C99 leaves both implementation-defined; GCC and Clang (and so ESP-IDF) convert an
 * out-of-range unsigned value to int32_t modulo 2^32 and shift a negative int32_t right
 * arithmetically (sign bits in). A compiler doing otherwise fails here. */
typedef char qnn_int8_pairs_needs_wrapping_conversion[(int32_t)0xFFFF8000u == -32768 ? 1 : -1];
typedef char qnn_int8_pairs_needs_arithmetic_shift[(-65536 >> 16) == -1 ? 1 : -1];

/* D from one packed weight pair A and input pair X (qnn_dense_int8_pairs.c's comment);
 * unsigned multiply: no signed overflow */
static inline int32_t qnn_pair_dot(uint32_t a, uint32_t x)
{
    return (int32_t)(a * x + 0x8000u) >> 16;
}

/* QNN_CONV_INT8_PAIRS (qnn_conv_int8.c): y is the output frame, step bytes a position */
void qnn_conv_int8_pairs(const qnn_conv_t *C, const int8_t *x, uint8_t *y, uint32_t step,
                         uint32_t *scratch);

/* Requantized codes of rows o .. o + rows - 1 at n positions: sums[4 * k + r] is row
 * o + r's accumulator at position k, whose codes start at y + k * step (qnn_requant.c; each
 * row's constants loaded once) */
void qnn_requant_block(const qnn_dense_t *L, uint32_t o, uint32_t rows, const int32_t *sums,
                       uint32_t n, int8_t *y, uint32_t step);

/* The same for int8 codes by thresholds (QNN_OUT_INT8; qnn_threshold.c): each row's
 * thresholds searched by qnn_threshold_count_binary, inlined */
void qnn_threshold_block(const qnn_dense_t *L, uint32_t o, uint32_t rows, const int32_t *sums,
                         uint32_t n, int8_t *y, uint32_t step);

/* ---- bit-sliced XNOR (qnn_dense_xnor_sliced.c) ---- */
#define QNN_SLICED_PLANES 17 /* of a count up to 65535, and one 0 above */

/* m[0 .. QNN_SLICED_PLANES - 1] = bit-sliced mismatch counts of 32 channels over `rows`
 * rows of `words` input words (x) and their planes (v, 32 a word); the next row starts
 * x_stride words further in x, v_stride in v */
void qnn_sliced_counts(const uint32_t *x, const uint32_t *v, uint32_t words, uint32_t rows,
                       uint32_t x_stride, uint32_t v_stride, uint32_t *m);

/* threshold planes of a block: the bit length of 2 * (in << shift) + 1 */
uint32_t qnn_sliced_planes(uint32_t in, uint32_t shift);

/* lane mask of m + tp <= bound, over `planes` planes of each */
uint32_t qnn_sliced_le(const uint32_t *m, const uint32_t *tp, uint32_t planes, uint32_t bound);

/* qnn_conv2d's QNN_CONV_XNOR_SLICED: y is the output bit frame */
void qnn_conv_xnor_sliced(const qnn_conv_t *C, const uint32_t *x, uint32_t *y);

static inline int32_t qnn_sum_i8(const int8_t *x, uint32_t n)
{
    int32_t s = 0;
    uint32_t i;
    for (i = 0; i < n; i++)
        s += x[i];
    return s;
}

#endif /* QNN_INTERNAL_H */

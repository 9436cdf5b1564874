/* BIPOLAR weights x int8 inputs by table lookup. Per group of 4 inputs the kernel builds
 * once per call a table of 16 partial sums, one per sign pattern of the 4 weights, and a
 * row then costs one lookup per group: on RV32IMC lbu (the pattern, stored pre-shifted as
 * a byte offset), add, lh, add: four instructions for four MACs, against about 6 per MAC
 * bit-serially over 8-bit inputs (qnn_dense_bipolar_weights keeps the inputs of 1 or 2
 * bits, where its planes are fewer). Building a table takes about 40 instructions,
 * amortized over the rows. A convolution runs two positions per pass
 * (qnn_bipolar_table_pair): one index load then feeds two lookups, at an immediate offset
 * where the row is unrolled. */
#include "qnn_internal.h"
#include "qnn_popcount.h" /* QNN_INLINE */

/* the 16 partial sums of inputs x0..x3: table[s] = sum_k (bit k of s ? x_k : -x_k) */
static inline void group_table(int32_t x0, int32_t x1, int32_t x2, int32_t x3, int16_t *t)
{
    const int32_t d0 = 2 * x0, d1 = 2 * x1, d2 = 2 * x2, d3 = 2 * x3;
    const int32_t a0 = -(x0 + x1 + x2 + x3), a1 = a0 + d0, a2 = a0 + d1, a3 = a1 + d1;
    const int32_t b0 = a0 + d2, b1 = a1 + d2, b2 = a2 + d2, b3 = a3 + d2;
    t[0] = (int16_t)a0, t[1] = (int16_t)a1, t[2] = (int16_t)a2, t[3] = (int16_t)a3;
    t[4] = (int16_t)b0, t[5] = (int16_t)b1, t[6] = (int16_t)b2, t[7] = (int16_t)b3;
    t[8] = (int16_t)(a0 + d3), t[9] = (int16_t)(a1 + d3), t[10] = (int16_t)(a2 + d3);
    t[11] = (int16_t)(a3 + d3), t[12] = (int16_t)(b0 + d3), t[13] = (int16_t)(b1 + d3);
    t[14] = (int16_t)(b2 + d3), t[15] = (int16_t)(b3 + d3);
}

/* tables of all `groups` groups (the stored row length: missing inputs count as 0) */
static void build_tables(const int8_t *x, uint32_t in, uint32_t groups, int16_t *t)
{
    const int8_t *const full_end = x + (in & ~3u);
    uint32_t g = in >> 2;
    for (; x != full_end; x += 4, t += QNN_TABLE_ENTRIES)
        group_table(x[0], x[1], x[2], x[3], t);
    if (in & 3u) {
        const uint32_t r = in & 3u;
        group_table(x[0], r > 1u ? x[1] : 0, r > 2u ? x[2] : 0, 0, t);
        t += QNN_TABLE_ENTRIES;
        g++;
    }
    for (; g < groups; g++, t += QNN_TABLE_ENTRIES)
        group_table(0, 0, 0, 0, t);
}

/* group k's partial sum for position 0, and for position 1 (its tables `span` bytes on):
 * index byte w[k] is the sign pattern's byte offset in the group's table */
#define QNN_LOOKUP(k, s0, s1)                                                 \
    do {                                                                      \
        const uint8_t *at_ = t + w[k]; /* the offsets below: immediates */    \
        s0 += *(const int16_t *)(at_ + 2u * QNN_TABLE_ENTRIES * (k));         \
        if (two)                                                              \
            s1 += *(const int16_t *)(at_ + 2u * QNN_TABLE_ENTRIES * (k) + span); \
    } while (0)

/* One row's sums over `groups` groups for one or `two` positions. `n` (1 .. 8): the group
 * count as a constant, fully unrolled (and `span` an immediate offset); n = 0: any count,
 * a multiple of 4 (the generator pads rows of more than 8 groups), 8 groups per trip. */
QNN_INLINE void row_sums(const uint8_t *w, const uint8_t *t, uint32_t groups, const int n,
                         const int two, int32_t *sum0, int32_t *sum1)
{
    const uint32_t span = 2u * QNN_TABLE_ENTRIES * (n ? (uint32_t)n : groups);
    int32_t s0 = 0, s1 = 0;
    const uint8_t *end;
    switch (n) {
    case 8: QNN_LOOKUP(7, s0, s1); /* fallthrough */
    case 7: QNN_LOOKUP(6, s0, s1); /* fallthrough */
    case 6: QNN_LOOKUP(5, s0, s1); /* fallthrough */
    case 5: QNN_LOOKUP(4, s0, s1); /* fallthrough */
    case 4: QNN_LOOKUP(3, s0, s1); /* fallthrough */
    case 3: QNN_LOOKUP(2, s0, s1); /* fallthrough */
    case 2: QNN_LOOKUP(1, s0, s1); /* fallthrough */
    case 1: QNN_LOOKUP(0, s0, s1); break;
    default:
        for (end = w + (groups & ~7u); w != end; w += 8, t += 16u * QNN_TABLE_ENTRIES) {
            QNN_LOOKUP(0, s0, s1); QNN_LOOKUP(1, s0, s1); QNN_LOOKUP(2, s0, s1);
            QNN_LOOKUP(3, s0, s1); QNN_LOOKUP(4, s0, s1); QNN_LOOKUP(5, s0, s1);
            QNN_LOOKUP(6, s0, s1); QNN_LOOKUP(7, s0, s1);
        }
        if (groups & 4u) {
            QNN_LOOKUP(0, s0, s1); QNN_LOOKUP(1, s0, s1); QNN_LOOKUP(2, s0, s1);
            QNN_LOOKUP(3, s0, s1);
        }
    }
    *sum0 = s0;
    *sum1 = s1;
}

/* all rows for one or `two` positions (tables one after the other, outputs y0 and y1) */
QNN_INLINE void table_rows(const qnn_dense_t *L, const uint8_t *t, uint32_t groups, void *y0,
                           void *y1, const int n, const int two)
{
    const uint32_t out = L->out;
    const uint8_t *w = (const uint8_t *)L->weights;
    uint32_t word0 = 0, word1 = 0;
    int32_t s0, s1;
    uint32_t o;
    if (L->out_kind == QNN_OUT_BITS && L->count == 1 && !L->bias && L->base <= 0 &&
        L->base + L->step > 0) {
        /* output bit = (acc >= t): the sign bits of acc - t shift in from the top, 32 rows
         * a word, inverted and moved down once per word */
        const int32_t *thr = L->thresholds;
        uint32_t *bits0 = (uint32_t *)y0, *bits1 = (uint32_t *)y1;
        for (o = 0; o < out; o += 32u) {
            const uint32_t rows = out - o < 32u ? out - o : 32u;
            const uint8_t *const end = w + rows * groups;
            word0 = word1 = 0;
            for (; w != end; w += groups, thr++) {
                row_sums(w, t, groups, n, two, &s0, &s1);
                word0 = (word0 >> 1) | ((uint32_t)(s0 - *thr) & 0x80000000u);
                if (two)
                    word1 = (word1 >> 1) | ((uint32_t)(s1 - *thr) & 0x80000000u);
            }
            *bits0++ = ~word0 >> (32u - rows);
            if (two)
                *bits1++ = ~word1 >> (32u - rows);
        }
        return;
    }
    for (o = 0; o < out; o++, w += groups) {
        row_sums(w, t, groups, n, two, &s0, &s1);
        qnn_emit(L, o, s0, y0, &word0);
        if (two)
            qnn_emit(L, o, s1, y1, &word1);
    }
}

/* the rows for one or `two` positions, with the group count's unrolled loop */
QNN_INLINE void dispatch(const qnn_dense_t *L, const uint8_t *t, uint32_t groups, void *y0,
                         void *y1, const int two)
{
    switch (groups) { /* short rows (conv windows of few channels) fully unrolled */
    case 1: table_rows(L, t, groups, y0, y1, 1, two); break;
    case 2: table_rows(L, t, groups, y0, y1, 2, two); break;
    case 3: table_rows(L, t, groups, y0, y1, 3, two); break;
    case 4: table_rows(L, t, groups, y0, y1, 4, two); break;
    case 5: table_rows(L, t, groups, y0, y1, 5, two); break;
    case 6: table_rows(L, t, groups, y0, y1, 6, two); break;
    case 7: table_rows(L, t, groups, y0, y1, 7, two); break;
    case 8: table_rows(L, t, groups, y0, y1, 8, two); break;
    default: table_rows(L, t, groups, y0, y1, 0, two); break;
    }
}

/* groups of a row as stored (see qnn.h) */
static uint32_t stored_groups(uint32_t in)
{
    const uint32_t real = (in + 3u) >> 2;
    return real <= 8u ? real : (real + 3u) & ~3u;
}

void qnn_dense_bipolar_table(const qnn_dense_t *L, const int8_t *x, void *y,
                             uint32_t *scratch)
{
    const uint32_t groups = stored_groups(L->in);
    build_tables(x, L->in, groups, (int16_t *)scratch);
    dispatch(L, (const uint8_t *)scratch, groups, y, y, 0);
}

void qnn_bipolar_table_pair(const qnn_dense_t *L, const int8_t *x0, const int8_t *x1,
                            void *y0, void *y1, uint32_t *scratch)
{
    const uint32_t groups = stored_groups(L->in);
    build_tables(x0, L->in, groups, (int16_t *)scratch);
    build_tables(x1, L->in, groups, (int16_t *)scratch + QNN_TABLE_ENTRIES * groups);
    dispatch(L, (const uint8_t *)scratch, groups, y0, y1, 1);
}

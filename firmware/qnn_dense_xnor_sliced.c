/* BIPOLAR x BIPOLAR layers with one threshold per channel and bits out, bit-sliced: 32
 * output channels a pass, lane r of every word standing for channel r.
 *
 * RV32IMC and Xtensa have no popcount instruction, and a row-wise popcount (SWAR or a
 * Harley-Seal tree per row) pays a final count per row. Here each input bit i meets its
 * weight plane V_i (bit r = W[r][i]) as x_i ? ~V_i : V_i, the mismatches of 32 channels
 * at once, and a carry-save tree over the 32 planes of an input word adds them lane by
 * lane: per input 1 load, 2 shifts (x_i as a mask), 1 xor and one carry-save adder (5
 * operations), no popcount at all. The tree's outputs are the bits of each channel's count
 * (bit-sliced), which meet the threshold planes in a bit-sliced compare whose result is
 * the output word itself.
 */
#include "qnn_internal.h"

/* carry-save adder: h:l = a + b + c, bit by bit */
#define QNN_SLICED_CSA(h, l, a, b, c)  \
    do {                               \
        const uint32_t u_ = (a) ^ (b); \
        h = ((a) & (b)) | (u_ & (c));  \
        l = u_ ^ (c);                  \
    } while (0)

/* carry-save adder over 8 inputs (planes p[j .. j+7] against x's bits j .. j+7) into
 * ones/twos/fours, the eights carried out in `out` */
#define QNN_SLICED_IN(j) (p[j] ^ (uint32_t)((int32_t)(xw << (31 - (j))) >> 31))
#define QNN_SLICED_8(out, j)                                                             \
    do {                                                                                 \
        uint32_t ta_, tb_, fa_, fb_;                                                     \
        QNN_SLICED_CSA(ta_, ones, ones, QNN_SLICED_IN(j), QNN_SLICED_IN((j) + 1));       \
        QNN_SLICED_CSA(tb_, ones, ones, QNN_SLICED_IN((j) + 2), QNN_SLICED_IN((j) + 3)); \
        QNN_SLICED_CSA(fa_, twos, twos, ta_, tb_);                                       \
        QNN_SLICED_CSA(ta_, ones, ones, QNN_SLICED_IN((j) + 4), QNN_SLICED_IN((j) + 5)); \
        QNN_SLICED_CSA(tb_, ones, ones, QNN_SLICED_IN((j) + 6), QNN_SLICED_IN((j) + 7)); \
        QNN_SLICED_CSA(fb_, twos, twos, ta_, tb_);                                       \
        QNN_SLICED_CSA(out, fours, fours, fa_, fb_);                                     \
    } while (0)

/* half adder of `carry` into counter plane c */
#define QNN_SLICED_RIPPLE(c)             \
    do {                                 \
        const uint32_t h_ = (c) & carry; \
        (c) ^= carry;                    \
        carry = h_;                      \
    } while (0)

/* up to this many words between flushes: their counts (at most 127 * 32 = 4064) fit the
 * twelve planes of the tree and its counters */
#define QNN_SLICED_CHUNK 127u

/* m += the twelve planes p (bit-sliced, m holds QNN_SLICED_PLANES planes) */
static void add_planes(uint32_t *m, const uint32_t *p)
{
    uint32_t k, carry = 0;
    for (k = 0; k < QNN_SLICED_PLANES; k++) {
        const uint32_t a = m[k], b = k < 12u ? p[k] : 0u, u = a ^ b;
        m[k] = u ^ carry;
        carry = (a & b) | (u & carry);
    }
}

/* the tree's and the counters' planes, bit 0 first */
#define QNN_SLICED_TREE {ones, twos, fours, eights, sixteens, c0, c1, c2, c3, c4, c5, c6}

/* GCC's scheduling before register allocation hoists the 32 plane loads of a word and
 * then spills a third of the tree to the stack (398 instructions a word on RV32IMC
 * instead of 298) */
#if defined(__GNUC__) && !defined(__clang__)
#define QNN_NO_EARLY_SCHEDULE __attribute__((optimize("no-schedule-insns")))
#else
#define QNN_NO_EARLY_SCHEDULE
#endif

QNN_NO_EARLY_SCHEDULE
void qnn_sliced_counts(const uint32_t *x, const uint32_t *v, uint32_t words, uint32_t rows,
                       uint32_t x_stride, uint32_t v_stride, uint32_t *m)
{
    uint32_t ones = 0, twos = 0, fours = 0, eights = 0, sixteens = 0;
    uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, chunk = 0, k;
    int flushed = 0;
    for (; rows; rows--, x += x_stride, v += v_stride) {
        const uint32_t *xk = x, *vk = v, *const end = x + words;
        for (; xk != end; xk++, vk += 32) {
            const uint32_t xw = *xk, *const p = vk;
            uint32_t e0, e1, s0, s1, carry;
            QNN_SLICED_8(e0, 0);
            QNN_SLICED_8(e1, 8);
            QNN_SLICED_CSA(s0, eights, eights, e0, e1);
            QNN_SLICED_8(e0, 16);
            QNN_SLICED_8(e1, 24);
            QNN_SLICED_CSA(s1, eights, eights, e0, e1);
            QNN_SLICED_CSA(carry, sixteens, sixteens, s0, s1);
            QNN_SLICED_RIPPLE(c0);
            QNN_SLICED_RIPPLE(c1);
            QNN_SLICED_RIPPLE(c2);
            QNN_SLICED_RIPPLE(c3);
            QNN_SLICED_RIPPLE(c4);
            QNN_SLICED_RIPPLE(c5);
            QNN_SLICED_RIPPLE(c6);
            if (++chunk == QNN_SLICED_CHUNK) { /* rows of more than 4064 inputs */
                const uint32_t tree[12] = QNN_SLICED_TREE;
                if (!flushed)
                    for (k = 0; k < QNN_SLICED_PLANES; k++)
                        m[k] = 0;
                add_planes(m, tree);
                flushed = 1;
                ones = twos = fours = eights = sixteens = 0;
                c0 = c1 = c2 = c3 = c4 = c5 = c6 = chunk = 0;
            }
        }
    }
    if (flushed) {
        const uint32_t tree[12] = QNN_SLICED_TREE;
        add_planes(m, tree);
        return;
    }
    m[0] = ones, m[1] = twos, m[2] = fours, m[3] = eights, m[4] = sixteens, m[5] = c0;
    m[6] = c1, m[7] = c2, m[8] = c3, m[9] = c4, m[10] = c5, m[11] = c6;
    m[12] = m[13] = m[14] = m[15] = m[16] = 0;
}

/* bit length of v (0 for 0) */
static uint32_t bit_length(uint32_t v)
{
    uint32_t n = 0;
    for (; v; v >>= 1)
        n++;
    return n;
}

uint32_t qnn_sliced_planes(uint32_t in, uint32_t shift)
{
    return bit_length(2u * (in << shift) + 1u);
}

uint32_t qnn_sliced_le(const uint32_t *m, const uint32_t *tp, uint32_t planes, uint32_t bound)
{
    const uint32_t *const end = tp + planes;
    uint32_t carry = 0, le = ~0u;
    for (; tp != end; tp++, m++, bound >>= 1) {
        /* bit k of S = m + tp, then S <= bound from the low bit up: a higher bit decides
         * where the two differ, else the lower ones do */
        const uint32_t a = *m, b = *tp, u = a ^ b, s = u ^ carry;
        carry = (a & b) | (u & carry);
        le = bound & 1u ? le | ~s : le & ~s;
    }
    return le;
}

/* the valid lanes of the block of 32 channels starting at channel o */
static uint32_t lanes(uint32_t out, uint32_t o)
{
    return out - o >= 32u ? ~0u : (1u << (out - o)) - 1u;
}

void qnn_dense_xnor_sliced(const qnn_dense_t *L, const uint32_t *x, void *y)
{
    const uint32_t words = ((uint32_t)L->in + 31u) >> 5, out = L->out;
    const uint32_t planes = qnn_sliced_planes(L->in, 0);
    const uint32_t *tp = (const uint32_t *)L->thresholds;
    const uint32_t *v = (const uint32_t *)L->weights;
    uint32_t m[QNN_SLICED_PLANES], *bits = (uint32_t *)y, o;
    for (o = 0; o < out; o += 32u, v += 32u * words, tp += planes) {
        qnn_sliced_counts(x, v, words, 1, 0, 0, m);
        *bits++ = qnn_sliced_le(m, tp, planes, L->in) & lanes(out, o);
    }
}

void qnn_conv_xnor_sliced(const qnn_conv_t *C, const uint32_t *x, uint32_t *y)
{
    const qnn_window_t *g = &C->win;
    const qnn_dense_t *L = &C->dense;
    const uint32_t cw = ((uint32_t)g->in_c + 31u) >> 5, out = L->out;
    const uint32_t block = 32u * cw * g->kh * g->kw; /* plane words of 32 channels */
    const uint32_t planes = qnn_sliced_planes(L->in, 1);
    uint32_t m[QNN_SLICED_PLANES + 1], oy, ox; /* m + 1: the counts, so m is twice them */
    m[0] = 0;
    for (oy = 0; oy < g->out_h; oy++)
        for (ox = 0; ox < g->out_w; ox++) {
            const int32_t iy0 = (int32_t)(oy * g->sh) - g->pad_top;
            const int32_t ix0 = (int32_t)(ox * g->sw) - g->pad_left;
            /* the window's real rows ky0 .. ky1 - 1 and columns kx0 .. kx1 - 1: padded
             * taps are left out (they count for nothing, neither +1 nor -1) */
            const int32_t ky0 = iy0 < 0 ? -iy0 : 0, kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t ky1 = iy0 + g->kh > g->in_h ? g->in_h - iy0 : g->kh;
            const int32_t kx1 = ix0 + g->kw > g->in_w ? g->in_w - ix0 : g->kw;
            const uint32_t rows = ky1 > ky0 && kx1 > kx0 ? (uint32_t)(ky1 - ky0) : 0u;
            const uint32_t cols = rows ? (uint32_t)(kx1 - kx0) : 0u;
            const uint32_t *xw = x, *v = (const uint32_t *)L->weights;
            const uint32_t *tp = (const uint32_t *)L->thresholds;
            uint32_t o;
            if (rows) {
                xw += ((uint32_t)(iy0 + ky0) * g->in_w + (uint32_t)(ix0 + kx0)) * cw;
                v += 32u * cw * ((uint32_t)ky0 * g->kw + (uint32_t)kx0);
            }
            for (o = 0; o < out; o += 32u, v += block, tp += planes) {
                qnn_sliced_counts(xw, v, cols * cw, rows, g->in_w * cw, 32u * cw * g->kw,
                                  m + 1);
                /* acc = real taps - 2 m >= t  <=>  2 m + (t + in) <= real taps + in */
                *y++ = qnn_sliced_le(m, tp, planes, rows * cols * g->in_c + L->in) &
                       lanes(out, o);
            }
        }
}

/* int8 convolution (QNN_CONV_INT8_PAIRS): four output positions x four output channels a
 * pass, two MACs per 32-bit multiply (the pairs of qnn_dense_int8_pairs.c).
 *
 * No window is gathered: each input row is packed into pairs once, when the first output
 * row that reads it comes, into a ring of kh rows in scratch. A packed row covers the
 * padded row's pixels px = ix + pad_left (pad pixels hold the pad code) that the output
 * positions read. A pixel's channels go in pairs (2j, 2j + 1), and the pairs in couples
 * (channels 4i .. 4i + 3; missing channels 0, their weights are 0 too); couple i of pixel
 * px sits at words i * row_stride + 2 * ((px % sw) * phase + px / sw) and the next one:
 * by stride phase, so that four neighbouring output positions read a tap's couple at
 * eight neighbouring words, and the kernel takes two pairs an iteration at fixed offsets.
 * A window is then kh * kw runs of 2 * ceil(C / 4) pairs, one run per tap, the run's
 * couples row_stride words apart; the weights follow the same order (ky, kx, pair). With
 * w_offset, a ring row also holds each pixel's channel sum (word couples * row_stride +
 * 2 * the pixel's index), for w_offset * (the window's sum).
 *
 * Per input pair of 4 rows x 4 positions: 4 + 4 loads and 16 x (mul, add, srai, sub); the
 * requantization's per-channel constants are loaded once for the four positions. */
#include "qnn_internal.h"

/* the ring's geometry (see above) */
typedef struct {
    uint32_t couples;    /* of a pixel: ceil(C / 4) */
    uint32_t groups;     /* groups of four output positions in a row */
    uint32_t phase;      /* pixels of one stride phase of a packed row */
    uint32_t row_stride; /* words between couple i and couple i + 1 of a pixel */
    uint32_t slot;       /* words of one packed row */
} ring_t;

static ring_t ring_geometry(const qnn_conv_t *C)
{
    const qnn_window_t *g = &C->win;
    ring_t r;
    const uint32_t lanes = 4u * (((uint32_t)g->out_w + 3u) >> 2);
    const uint32_t pixels = (lanes - 1u) * g->sw + g->kw; /* of the padded row, read */
    r.couples = ((uint32_t)g->in_c + 3u) >> 2;
    r.groups = lanes >> 2;
    r.phase = (pixels + g->sw - 1u) / g->sw;
    r.row_stride = 2u * g->sw * r.phase;
    r.slot = (r.couples + (C->dense.w_offset != 0)) * r.row_stride;
    return r;
}

/* a pair of int8 values as qnn_pair_dot takes it: c + d * 2^16 */
static inline uint32_t pair(int32_t c, int32_t d)
{
    return (uint32_t)c + ((uint32_t)d << 16);
}

/* padded input row py (= iy + pad_top) into ring row s */
static void pack_row(const qnn_conv_t *C, const ring_t *r, const int8_t *x, uint32_t py,
                     uint32_t *s)
{
    const qnn_window_t *g = &C->win;
    const uint32_t c_n = g->in_c, full = c_n >> 2, pixels = r->phase * g->sw;
    const int32_t iy = (int32_t)py - g->pad_top, pad = C->pad_code;
    uint32_t px, i, c;
    for (px = 0; px < pixels; px++) {
        const int32_t ix = (int32_t)px - g->pad_left;
        uint32_t *d = s + 2u * ((px % g->sw) * r->phase + px / g->sw);
        int32_t v[4];
        if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w) {
            const uint32_t both = pair(pad, pad);
            for (i = 0; i < full; i++, d += r->row_stride)
                d[0] = both, d[1] = both;
            if (c_n & 3u) {
                for (c = 0; c < 4u; c++)
                    v[c] = c < (c_n & 3u) ? pad : 0;
                d[0] = pair(v[0], v[1]), d[1] = pair(v[2], v[3]), d += r->row_stride;
            }
            if (C->dense.w_offset)
                *d = (uint32_t)((int32_t)c_n * pad);
            continue;
        }
        {
            const int8_t *const pixel = x + ((uint32_t)iy * g->in_w + (uint32_t)ix) * c_n;
            const int8_t *p = pixel;
            for (i = 0; i < full; i++, p += 4, d += r->row_stride)
                d[0] = pair(p[0], p[1]), d[1] = pair(p[2], p[3]);
            if (c_n & 3u) {
                for (c = 0; c < 4u; c++)
                    v[c] = c < (c_n & 3u) ? p[c] : 0;
                d[0] = pair(v[0], v[1]), d[1] = pair(v[2], v[3]), d += r->row_stride;
            }
            if (C->dense.w_offset)
                *d = (uint32_t)qnn_sum_i8(pixel, c_n);
        }
    }
}

/* GCC's first scheduling pass hoists every weight load of an iteration ahead of the
 * multiplies, which with 16 accumulators spills registers on RV32; without it the inner
 * loop takes 75 instructions (4 + 4 loads, 64 for 16 pairs, 3 of loop) for 32 MACs.
 * noinline: GCC inlines no function of other optimize options. */
#if defined(__GNUC__) && !defined(__clang__)
#define QNN_FOUR_POSITIONS static __attribute__((noinline, optimize("no-schedule-insns")))
#else
#define QNN_FOUR_POSITIONS static
#endif

#define QNN_PAIR_ROW4(r, w)               \
    do {                                  \
        const uint32_t a_ = (w)[r];       \
        acc##r -= qnn_pair_dot(a_, x0);   \
        bcc##r -= qnn_pair_dot(a_, x1);   \
        ccc##r -= qnn_pair_dot(a_, x2);   \
        dcc##r -= qnn_pair_dot(a_, x3);   \
    } while (0)
/* one input pair of four positions (at xp[0], xp[2], xp[4], xp[6]) times four rows' weight
 * pairs (at w) */
#define QNN_PAIR_4X4(xp, w)                                                             \
    do {                                                                                \
        const uint32_t x0 = (xp)[0], x1 = (xp)[2], x2 = (xp)[4], x3 = (xp)[6];          \
        QNN_PAIR_ROW4(0, w); QNN_PAIR_ROW4(1, w); QNN_PAIR_ROW4(2, w); QNN_PAIR_ROW4(3, w); \
    } while (0)

/* rows o .. o + 3 (weights w: per pair the four rows' words) for four positions over
 * `runs` runs of `couples` couples of pairs, run k's first couple at x + run[k], the next
 * ones `stride` words further: sums[4 * position + row], from start[position]. 147
 * instructions an iteration: 64 MACs. */
QNN_FOUR_POSITIONS void four_by_four(const uint32_t *w, const uint32_t *x, const uint32_t *run,
                                     uint32_t runs, uint32_t couples, uint32_t stride,
                                     const int32_t *start, int32_t *sums)
{
    int32_t acc0 = start[0], acc1 = start[0], acc2 = start[0], acc3 = start[0];
    int32_t bcc0 = start[1], bcc1 = start[1], bcc2 = start[1], bcc3 = start[1];
    int32_t ccc0 = start[2], ccc1 = start[2], ccc2 = start[2], ccc3 = start[2];
    int32_t dcc0 = start[3], dcc1 = start[3], dcc2 = start[3], dcc3 = start[3];
    uint32_t k;
    for (k = 0; k < runs; k++) {
        const uint32_t *xp = x + run[k], *const end = w + 8u * couples;
        for (; w != end; xp += stride, w += 8) {
            QNN_PAIR_4X4(xp, w);
            QNN_PAIR_4X4(xp + 1, w + 4);
        }
    }
    sums[0] = acc0, sums[1] = acc1, sums[2] = acc2, sums[3] = acc3;
    sums[4] = bcc0, sums[5] = bcc1, sums[6] = bcc2, sums[7] = bcc3;
    sums[8] = ccc0, sums[9] = ccc1, sums[10] = ccc2, sums[11] = ccc3;
    sums[12] = dcc0, sums[13] = dcc1, sums[14] = dcc2, sums[15] = dcc3;
}

/* store rows o .. o + rows - 1 of positions 0 .. n - 1 (sums as four_by_four's), position k
 * at y + k * step; bits collect per position in word[k] */
static void emit_block(const qnn_dense_t *L, uint32_t o, uint32_t rows, const int32_t *sums,
                       uint32_t n, uint8_t *y, uint32_t step, uint32_t *word)
{
    uint32_t k, r;
    if (L->out_kind == QNN_OUT_REQUANT) {
        qnn_requant_block(L, o, rows, sums, n, (int8_t *)y, step);
        return;
    }
    for (k = 0; k < n; k++, y += step)
        for (r = 0; r < rows; r++)
            qnn_emit(L, o + r, sums[4u * k + r], y, &word[k]);
}

void qnn_conv_int8_pairs(const qnn_conv_t *C, const int8_t *x, uint8_t *y, uint32_t step,
                         uint32_t *scratch)
{
    const qnn_window_t *g = &C->win;
    const qnn_dense_t *L = &C->dense;
    const ring_t r = ring_geometry(C);
    const uint32_t taps = (uint32_t)g->kh * g->kw, window = 2u * taps * r.couples;
    uint32_t *const run = scratch + g->kh * r.slot;
    uint32_t next = 0; /* the next padded input row to pack */
    uint32_t oy, ky, kx, q, o, k;
    for (oy = 0; oy < g->out_h; oy++) {
        const uint32_t py0 = oy * g->sh;
        for (ky = 0; ky < g->kh; ky++) {
            const uint32_t py = py0 + ky, s = py % g->kh;
            if (py >= next) {
                pack_row(C, &r, x, py, scratch + s * r.slot);
                next = py + 1u;
            }
            for (kx = 0; kx < g->kw; kx++)
                run[ky * g->kw + kx] = s * r.slot + 2u * ((kx % g->sw) * r.phase + kx / g->sw);
        }
        for (q = 0; q < r.groups; q++) {
            const uint32_t lane = 4u * q, n = g->out_w - lane < 4u ? g->out_w - lane : 4u;
            uint8_t *const yq = y + (oy * g->out_w + lane) * step;
            const uint32_t *w = (const uint32_t *)L->weights;
            int32_t start[4] = {0, 0, 0, 0}, sums[16];
            uint32_t word[4] = {0, 0, 0, 0};
            if (L->w_offset) /* w_offset * the window's sum, from the pixel sums */
                for (k = 0; k < taps; k++)
                    for (kx = 0; kx < 4u; kx++)
                        start[kx] += L->w_offset * (int32_t)scratch[
                            run[k] + r.couples * r.row_stride + 2u * (lane + kx)];
            for (o = 0; o < L->out; o += 4u, w += 4u * window) {
                four_by_four(w, scratch + 2u * lane, run, taps, r.couples, r.row_stride, start,
                             sums);
                emit_block(L, o, L->out - o < 4u ? L->out - o : 4u, sums, n, yq, step, word);
            }
        }
    }
}

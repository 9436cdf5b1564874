/* int8 convolution (QNN_CONV_INT8_PAIRS): four output positions x four output channels a
 * pass, two MACs per 32-bit multiply (the pairs of qnn_dense_int8_pairs.c).
 *
 * No window is gathered: each input row is packed into pairs once, when the first output
 * row that reads it comes, into a ring of kh rows in scratch, each kept twice (slots s and
 * s + kh), so that the kh rows of any output row lie in consecutive slots. A packed row
 * covers the padded row's pixels px = ix + pad_left (pad pixels hold the pad code) that the
 * output positions read. A pixel's channels go in pairs (2j, 2j + 1), its C padded with 0
 * to a multiple of 4 (their weights are 0 too), and the pairs in groups of G (16, 8, 4 or
 * 2: the most that divide them); group i of pixel px sits at words i * row_stride +
 * G * ((px % sw) * phase + px / sw) of its slot and the next G - 1: by stride phase, so
 * that four neighbouring output positions read a tap's group at 4 G neighbouring words,
 * and the kernel takes G pairs an iteration at fixed offsets. A slot is (groups of a
 * pixel) * row_stride words, so that one kx's groups over the kh rows are one run,
 * row_stride words apart: a window is kw runs, and the weights follow the same order
 * (kx, ky, pair). With w_offset, each ring row's pixel sums go to a second ring (a word
 * per pixel, by stride phase), for w_offset * (the window's sum).
 *
 * The accumulators of a block of 4 output channels go to scratch for the whole output row
 * (four_by_four on each group of four positions), then out: the requantization's and the
 * thresholds' per-channel constants are loaded once per output row and block.
 * bench/bench_firmware.py: 2.44 instructions per MAC requantized, 2.48 with 255 thresholds,
 * on a 3x3 convolution of 32 channels, 12x12 (the inner loop alone: 2.26). */
#include "qnn_internal.h"

/* the ring's geometry (see above) */
typedef struct {
    uint32_t group;      /* G: pairs of a pixel side by side */
    uint32_t groups;     /* of a pixel: ceil(C / 4) * 2 / G */
    uint32_t lanes;      /* output positions of a row computed: 4 * ceil(out_w / 4) */
    uint32_t phase;      /* pixels of one stride phase of a packed row */
    uint32_t row_stride; /* words between group i and group i + 1 of a pixel */
    uint32_t slot;       /* words of one packed row */
} ring_t;

static ring_t ring_geometry(const qnn_conv_t *C)
{
    const qnn_window_t *g = &C->win;
    const uint32_t pairs = 2u * (((uint32_t)g->in_c + 3u) >> 2);
    ring_t r;
    r.group = pairs % 16u == 0 ? 16u : pairs % 8u == 0 ? 8u : pairs % 4u == 0 ? 4u : 2u;
    r.groups = pairs / r.group;
    r.lanes = 4u * (((uint32_t)g->out_w + 3u) >> 2);
    /* pixels of the padded row that the lanes read, by stride phase */
    r.phase = ((r.lanes - 1u) * g->sw + g->kw + g->sw - 1u) / g->sw;
    r.row_stride = r.group * g->sw * r.phase;
    r.slot = r.groups * r.row_stride;
    return r;
}

/* a pair of int8 values as qnn_pair_dot takes it: c + d * 2^16 */
static inline uint32_t pair(int32_t c, int32_t d)
{
    return (uint32_t)c + ((uint32_t)d << 16);
}

/* padded input row py (= iy + pad_top) into slots s and s + kh of the ring (`mirror` words
 * further), its pixel sums (with w_offset) into `sums` */
static void pack_row(const qnn_conv_t *C, const ring_t *r, const int8_t *x, uint32_t py,
                     uint32_t *s, uint32_t mirror, int32_t *sums)
{
    const qnn_window_t *g = &C->win;
    const uint32_t c_n = g->in_c, pixels = r->phase * g->sw, gap = r->row_stride - r->group;
    const int32_t iy = (int32_t)py - g->pad_top, pad = C->pad_code;
    const int8_t pad_pixel[4] = {C->pad_code, C->pad_code, C->pad_code, C->pad_code};
    uint32_t px, j;
    for (px = 0; px < pixels; px++) {
        const int32_t ix = (int32_t)px - g->pad_left;
        const uint32_t at = (px % g->sw) * r->phase + px / g->sw;
        const int real = iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w;
        /* a pad pixel reads the same 4 pad codes for every couple */
        const int8_t *p = real ? x + ((uint32_t)iy * g->in_w + (uint32_t)ix) * c_n : pad_pixel;
        const uint32_t p_step = real ? 4u : 0u;
        uint32_t *d = s + r->group * at, *group_end = d + r->group;
        int32_t v[4];
        if (C->dense.w_offset)
            sums[at] = real ? qnn_sum_i8(p, c_n) : (int32_t)c_n * pad;
        for (j = c_n >> 2; j; j--, p += p_step) { /* a couple of pairs: 4 channels */
            const uint32_t lo = pair(p[0], p[1]), hi = pair(p[2], p[3]);
            d[0] = d[mirror] = lo;
            d[1] = d[mirror + 1u] = hi;
            d += 2;
            if (d == group_end) /* the pixel's next group of G pairs */
                d += gap, group_end = d + r->group;
        }
        if (c_n & 3u) { /* the last channels, then zeros */
            for (j = 0; j < 4u; j++)
                v[j] = j < (c_n & 3u) ? p[j] : 0;
            d[0] = d[mirror] = pair(v[0], v[1]);
            d[1] = d[mirror + 1u] = pair(v[2], v[3]);
        }
    }
}

/* GCC's first scheduling pass hoists every weight load of an iteration ahead of the
 * multiplies, which with 16 accumulators spills registers on RV32. noinline: GCC inlines
 * no function of other optimize options. */
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
/* pair j of a group of G of four positions (at xp[j], xp[j + G], xp[j + 2G], xp[j + 3G])
 * times four rows' weight pairs (at w + 4j) */
#define QNN_PAIR_4X4(j, G)                                                                \
    do {                                                                                  \
        const uint32_t x0 = xp[j], x1 = xp[(j) + (G)], x2 = xp[(j) + 2 * (G)],            \
                       x3 = xp[(j) + 3 * (G)];                                            \
        QNN_PAIR_ROW4(0, w + 4 * (j)); QNN_PAIR_ROW4(1, w + 4 * (j));                     \
        QNN_PAIR_ROW4(2, w + 4 * (j)); QNN_PAIR_ROW4(3, w + 4 * (j));                     \
    } while (0)
#define QNN_GROUP_2(G) QNN_PAIR_4X4(0, G); QNN_PAIR_4X4(1, G)
#define QNN_GROUP_4(G) QNN_GROUP_2(G); QNN_PAIR_4X4(2, G); QNN_PAIR_4X4(3, G)
#define QNN_GROUP_8(G) \
    QNN_GROUP_4(G); QNN_PAIR_4X4(4, G); QNN_PAIR_4X4(5, G); QNN_PAIR_4X4(6, G); QNN_PAIR_4X4(7, G)
#define QNN_GROUP_16(G)                                                                     \
    QNN_GROUP_8(G); QNN_PAIR_4X4(8, G); QNN_PAIR_4X4(9, G); QNN_PAIR_4X4(10, G);             \
    QNN_PAIR_4X4(11, G); QNN_PAIR_4X4(12, G); QNN_PAIR_4X4(13, G); QNN_PAIR_4X4(14, G);      \
    QNN_PAIR_4X4(15, G)
/* one run: groups of G pairs `stride` words apart until w reaches end */
#define QNN_RUN(G)                                          \
    for (; w != end; xp += stride, w += 4 * (G)) {          \
        QNN_GROUP_##G(G);                                   \
    }

/* rows o .. o + 3 (weights w: per pair the four rows' words) for four positions over
 * `runs` runs of `groups` groups of G = `group` pairs, run k's first group at x + run[k],
 * the next ones `stride` words further: sums[4 * position + row], from start[position].
 * An iteration takes 72 G instructions for 32 G MACs and a few more (G = 16: 1159, two
 * reloads of registers spilled around the loop). One loop per G in one function: GCC
 * allocated registers worse with one function per G (spills inside the G = 8 loop). */
QNN_FOUR_POSITIONS void four_by_four(const uint32_t *w, const uint32_t *x,
                                     const uint32_t *run, uint32_t runs,
                                     uint32_t groups, uint32_t group, uint32_t stride,
                                     const int32_t *start, int32_t *sums)
{
    int32_t acc0 = start[0], acc1 = start[0], acc2 = start[0], acc3 = start[0];
    int32_t bcc0 = start[1], bcc1 = start[1], bcc2 = start[1], bcc3 = start[1];
    int32_t ccc0 = start[2], ccc1 = start[2], ccc2 = start[2], ccc3 = start[2];
    int32_t dcc0 = start[3], dcc1 = start[3], dcc2 = start[3], dcc3 = start[3];
    uint32_t k;
    for (k = 0; k < runs; k++) {
        const uint32_t *xp = x + run[k], *const end = w + 4u * group * groups;
        if (group == 16u)
            QNN_RUN(16)
        else if (group == 8u)
            QNN_RUN(8)
        else if (group == 4u)
            QNN_RUN(4)
        else
            QNN_RUN(2)
    }
    sums[0] = acc0, sums[1] = acc1, sums[2] = acc2, sums[3] = acc3;
    sums[4] = bcc0, sums[5] = bcc1, sums[6] = bcc2, sums[7] = bcc3;
    sums[8] = ccc0, sums[9] = ccc1, sums[10] = ccc2, sums[11] = ccc3;
    sums[12] = dcc0, sums[13] = dcc1, sums[14] = dcc2, sums[15] = dcc3;
}

void qnn_conv_int8_pairs(const qnn_conv_t *C, const int8_t *x, uint8_t *y, uint32_t step,
                         uint32_t *scratch)
{
    const qnn_window_t *g = &C->win;
    const qnn_dense_t *L = &C->dense;
    const ring_t r = ring_geometry(C);
    const uint32_t kh = g->kh, kw = g->kw, sw = g->sw, pixels = sw * r.phase;
    const uint32_t window = kh * kw * r.groups * r.group; /* pairs */
    int32_t *const sums = (int32_t *)scratch + 2u * kh * r.slot; /* pixel sums (w_offset) */
    uint32_t *const run = (uint32_t *)sums + (L->w_offset ? kh * pixels : 0u); /* kw runs */
    int32_t *const acc = (int32_t *)(run + kw);              /* [lanes][4] of a block */
    uint32_t *const word = (uint32_t *)(acc + 4u * r.lanes); /* bits per position */
    int32_t *const start = (int32_t *)(word + r.lanes);      /* per position */
    uint32_t next = 0; /* the next padded input row to pack */
    uint32_t oy, ky, kx, lane, o, k;
    for (lane = 0; lane < r.lanes; lane++)
        word[lane] = 0, start[lane] = 0;
    for (oy = 0; oy < g->out_h; oy++, y += g->out_w * step) {
        const uint32_t py0 = oy * g->sh, first = py0 % kh;
        const uint32_t *w = (const uint32_t *)L->weights;
        for (ky = 0; ky < kh; ky++) {
            const uint32_t py = py0 + ky;
            if (py >= next) {
                pack_row(C, &r, x, py, scratch + (py % kh) * r.slot, kh * r.slot,
                         sums + (py % kh) * pixels);
                next = py + 1u;
            }
        }
        for (kx = 0; kx < kw; kx++)
            run[kx] = first * r.slot + r.group * ((kx % sw) * r.phase + kx / sw);
        if (L->w_offset) /* w_offset * the window's sum, from the pixel sums */
            for (lane = 0; lane < r.lanes; lane++) {
                int32_t sum = 0;
                for (ky = 0; ky < kh; ky++)
                    for (kx = 0; kx < kw; kx++)
                        sum += sums[((py0 + ky) % kh) * pixels + (kx % sw) * r.phase + kx / sw +
                                    lane];
                start[lane] = L->w_offset * sum;
            }
        for (o = 0; o < L->out; o += 4u, w += 4u * window) {
            const uint32_t rows = L->out - o < 4u ? L->out - o : 4u;
            for (lane = 0; lane < r.lanes; lane += 4u)
                four_by_four(w, scratch + r.group * lane, run, kw, kh * r.groups, r.group,
                             r.row_stride, start + lane, acc + 4u * lane);
            if (L->out_kind == QNN_OUT_REQUANT) {
                qnn_requant_block(L, o, rows, acc, g->out_w, (int8_t *)y, step);
                continue;
            }
            if (L->out_kind == QNN_OUT_INT8 && L->count > 1u) {
                qnn_threshold_block(L, o, rows, acc, g->out_w, (int8_t *)y, step);
                continue;
            }
            for (k = 0; k < g->out_w; k++)
                for (ky = 0; ky < rows; ky++)
                    qnn_emit(L, o + ky, acc[4u * k + ky], y + k * step, &word[k]);
        }
    }
}

/* Pooling on codes over channel-last frames. Max: int8 codes take the max, bit frames
 * (BIPOLAR, 1 = +1) the OR; padded taps are skipped, so they never win (every max pool
 * window holds a real pixel: flow.ir.pool refuses windows of padding only). */
#include "qnn.h"

/* The real (unpadded) taps of output (oy, ox)'s window: its first pixel's index in the
 * frame and how many rows and columns of it lie inside the frame. */
typedef struct {
    uint32_t first, rows, cols;
} real_taps_t;

static real_taps_t real_taps(const qnn_window_t *g, uint32_t oy, uint32_t ox)
{
    const int32_t iy0 = (int32_t)(oy * g->sh) - g->pad_top;
    const int32_t ix0 = (int32_t)(ox * g->sw) - g->pad_left;
    const int32_t ky0 = iy0 < 0 ? -iy0 : 0, kx0 = ix0 < 0 ? -ix0 : 0;
    const int32_t ky1 = iy0 + g->kh > g->in_h ? g->in_h - iy0 : g->kh;
    const int32_t kx1 = ix0 + g->kw > g->in_w ? g->in_w - ix0 : g->kw;
    real_taps_t t = {0u, 0u, 0u}; /* a window of padding only (average pools) has none */
    if (ky1 > ky0 && kx1 > kx0) {
        t.first = (uint32_t)(iy0 + ky0) * g->in_w + (uint32_t)(ix0 + kx0);
        t.rows = (uint32_t)(ky1 - ky0);
        t.cols = (uint32_t)(kx1 - kx0);
    }
    return t;
}

void qnn_maxpool(const qnn_pool_t *L, const void *x, void *y)
{
    const qnn_window_t *g = &L->win;
    const uint32_t c_n = L->bits ? ((uint32_t)g->in_c + 31u) >> 5 : g->in_c;
    uint32_t oy, ox, c;
    for (oy = 0; oy < g->out_h; oy++) {
        for (ox = 0; ox < g->out_w; ox++) {
            /* the first real pixel starts the result, the others join it */
            const real_taps_t t = real_taps(g, oy, ox);
            const uint32_t first = t.first * c_n;
            const uint32_t at = (oy * g->out_w + ox) * c_n;
            uint32_t ky, kx;
            if (L->bits) {
                const uint32_t *in = (const uint32_t *)x;
                uint32_t *out = (uint32_t *)y + at;
                for (c = 0; c < c_n; c++)
                    out[c] = in[first + c];
                for (ky = 0; ky < t.rows; ky++)
                    for (kx = 0; kx < t.cols; kx++) {
                        const uint32_t *p = in + first + (ky * g->in_w + kx) * c_n;
                        for (c = 0; c < c_n; c++)
                            out[c] |= p[c];
                    }
            } else {
                const int8_t *in = (const int8_t *)x;
                int8_t *out = (int8_t *)y + at;
                for (c = 0; c < c_n; c++)
                    out[c] = in[first + c];
                for (ky = 0; ky < t.rows; ky++)
                    for (kx = 0; kx < t.cols; kx++) {
                        const int8_t *p = in + first + (ky * g->in_w + kx) * c_n;
                        for (c = 0; c < c_n; c++)
                            out[c] = p[c] > out[c] ? p[c] : out[c];
                    }
            }
        }
    }
}

/* Round-to-floor and half-to-even division by 2^shift, portable for negative sums (C99
 * leaves >> of a negative value to the implementation). */
static int32_t shift_round(int32_t acc, int32_t shift, uint32_t half_even)
{
    int32_t q, r, half;
    if (shift <= 0)
        return acc * (int32_t)(1u << (uint32_t)-shift);
    q = acc >= 0 ? acc >> shift : -(int32_t)(((uint32_t)-acc + (1u << shift) - 1u) >> shift);
    if (!half_even)
        return q;
    r = acc - q * (int32_t)(1u << shift); /* 0 .. 2^shift - 1 */
    half = (int32_t)(1u << (shift - 1));
    return q + (r > half || (r == half && (q & 1)));
}

/* Average pool on int8 codes (stored = code - in_offset): each channel's window sum of
 * codes (padded taps add 0: skipped), divided by 2^shift, clamped, stored - out_offset. */
void qnn_avgpool(const qnn_avgpool_t *L, const int8_t *x, int8_t *y)
{
    const qnn_window_t *g = &L->win;
    const uint32_t c_n = g->in_c;
    uint32_t oy, ox, c, ky, kx;
    for (oy = 0; oy < g->out_h; oy++) {
        for (ox = 0; ox < g->out_w; ox++) {
            const real_taps_t t = real_taps(g, oy, ox);
            const int8_t *first = x + t.first * c_n;
            const int32_t real = (int32_t)(t.rows * t.cols) * L->in_offset;
            int8_t *out = y + (oy * g->out_w + ox) * c_n;
            for (c = 0; c < c_n; c++) {
                int32_t acc = real, v;
                for (ky = 0; ky < t.rows; ky++)
                    for (kx = 0; kx < t.cols; kx++)
                        acc += first[(ky * g->in_w + kx) * c_n + c];
                v = shift_round(acc, L->shift, L->half_even);
                v = v < L->lo ? L->lo : v > L->hi ? L->hi : v;
                out[c] = (int8_t)(v - L->out_offset);
            }
        }
    }
}

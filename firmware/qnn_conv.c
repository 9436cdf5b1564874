/* Convolution over channel-last frames: every output position gathers its window into
 * scratch (padding as the pad code, or masked out for bit windows) and runs the window's
 * dense kernel over all output channels; the gather is amortized over C_out. int8 pairs
 * (qnn_conv_int8.c) and bit-sliced XNOR (qnn_dense_xnor_sliced.c) gather no window. */
#include <string.h>

#include "qnn_internal.h"
#include "qnn_popcount.h"

/* Copy the window of output position (oy, ox) into win (pixel_bytes a pixel, in (ky, kx)
 * order); padded pixels take `fill`. With x NULL, real pixels are all ones instead (the
 * mask of a bit window). Returns the number of real (unpadded) pixels. */
static uint32_t gather(const qnn_window_t *g, const uint8_t *x, uint32_t pixel_bytes,
                       uint32_t oy, uint32_t ox, uint8_t *win, int fill)
{
    const int32_t iy0 = (int32_t)(oy * g->sh) - g->pad_top;
    const int32_t ix0 = (int32_t)(ox * g->sw) - g->pad_left;
    /* the window's real columns kx0 .. kx1 - 1, the same for every row (none in a window
     * of left or right padding only) */
    const int32_t kw = (int32_t)g->kw;
    const int32_t kx0 = ix0 < 0 ? (-ix0 < kw ? -ix0 : kw) : 0;
    const int32_t kx1 = ix0 + kw > g->in_w ? (g->in_w - ix0 > kx0 ? g->in_w - ix0 : kx0) : kw;
    const uint32_t row_bytes = g->kw * pixel_bytes;
    uint32_t ky, rows = 0;
    for (ky = 0; ky < g->kh; ky++, win += row_bytes) {
        const int32_t iy = iy0 + (int32_t)ky;
        if (iy < 0 || iy >= g->in_h) {
            memset(win, fill, row_bytes);
            continue;
        }
        rows++;
        if (kx0 > 0)
            memset(win, fill, (uint32_t)kx0 * pixel_bytes);
        if (kx1 == kx0)
            ; /* no real column: the fills around cover the row */
        else if (x)
            memcpy(win + (uint32_t)kx0 * pixel_bytes,
                   x + ((uint32_t)iy * g->in_w + (uint32_t)(ix0 + kx0)) * pixel_bytes,
                   (uint32_t)(kx1 - kx0) * pixel_bytes);
        else
            memset(win + (uint32_t)kx0 * pixel_bytes, 0xFF, (uint32_t)(kx1 - kx0) * pixel_bytes);
        if (kx1 < g->kw)
            memset(win + (uint32_t)kx1 * pixel_bytes, fill,
                   (uint32_t)(g->kw - kx1) * pixel_bytes);
    }
    return rows * (uint32_t)(kx1 - kx0);
}

/* BIPOLAR x BIPOLAR window: acc = taps - 2 * mismatches over the real taps (padded taps
 * contribute nothing: masked where the window holds any); bits out by one threshold go
 * bit-sliced instead (qnn_conv_xnor_sliced) */
static void xnor_window(const qnn_dense_t *L, const uint32_t *x, const uint32_t *mask,
                        uint32_t words, int32_t taps, void *y)
{
    const uint32_t out = L->out;
    const uint32_t *w = (const uint32_t *)L->weights;
    uint32_t word = 0;
    uint32_t o;
    for (o = 0; o < out; o++, w += words) {
        int32_t m = (int32_t)(mask ? qnn_popcount_xor_masked(x, w, mask, words)
                                   : qnn_popcount_xor(x, w, words));
        qnn_emit(L, o, taps - 2 * m, y, &word);
    }
}

/* depthwise: channel c's window times its own kernel w[c][0 .. taps - 1] (int16) */
static void depthwise_window(const qnn_dense_t *L, const int8_t *x, uint32_t taps, void *y)
{
    const uint32_t c_n = L->out;
    const int16_t *w = (const int16_t *)L->weights;
    uint32_t word = 0;
    uint32_t c, t;
    for (c = 0; c < c_n; c++, w += taps) {
        int32_t acc = 0;
        for (t = 0; t < taps; t++)
            acc += w[t] * x[t * c_n + c];
        qnn_emit(L, c, acc, y, &word);
    }
}

/* qnn_dense_bipolar_table two positions a pass (one weight load feeds both): positions in
 * output order, across rows; their windows one after the other in scratch, then the
 * kernel's scratch; the last position alone. */
static void table_conv(const qnn_conv_t *C, const uint8_t *x, uint8_t *out, uint32_t step,
                       uint32_t *scratch)
{
    const qnn_window_t *g = &C->win;
    const qnn_dense_t *L = &C->dense;
    const uint32_t words = ((uint32_t)g->kh * g->kw * g->in_c + 3u) >> 2;
    const uint32_t positions = (uint32_t)g->out_h * g->out_w;
    int8_t *const win0 = (int8_t *)scratch, *const win1 = (int8_t *)(scratch + words);
    uint32_t *const rest = scratch + 2u * words;
    uint32_t oy = 0, ox = 0, done = 0;
    for (; done + 2u <= positions; done += 2u, out += 2u * step) {
        gather(g, x, g->in_c, oy, ox, (uint8_t *)win0, C->pad_code);
        if (++ox == g->out_w)
            ox = 0, oy++;
        gather(g, x, g->in_c, oy, ox, (uint8_t *)win1, C->pad_code);
        if (++ox == g->out_w)
            ox = 0, oy++;
        qnn_bipolar_table_pair(L, win0, win1, out, out + step, rest);
    }
    if (done < positions) {
        gather(g, x, g->in_c, oy, ox, (uint8_t *)win0, C->pad_code);
        qnn_dense_bipolar_table(L, win0, out, rest);
    }
}

/* bytes of one output position as stored */
static uint32_t position_bytes(const qnn_dense_t *L)
{
    if (L->out_kind == QNN_OUT_BITS)
        return 4u * (((uint32_t)L->out + 31u) >> 5);
    return L->out_kind == QNN_OUT_ACC ? 4u * L->out : L->out;
}

void qnn_conv2d(const qnn_conv_t *C, const void *x, void *y, uint32_t *scratch)
{
    const qnn_window_t *g = &C->win;
    const qnn_dense_t *L = &C->dense;
    const uint32_t taps = (uint32_t)g->kh * g->kw, step = position_bytes(L);
    uint8_t *out = (uint8_t *)y;
    uint32_t oy, ox;
    if (C->kernel == QNN_CONV_XNOR_SLICED) {
        qnn_conv_xnor_sliced(C, (const uint32_t *)x, (uint32_t *)y);
        return;
    }
    if (C->kernel == QNN_CONV_XNOR) {
        const uint32_t cw = ((uint32_t)g->in_c + 31u) >> 5, words = taps * cw;
        uint32_t *win = scratch, *mask = scratch + words;
        for (oy = 0; oy < g->out_h; oy++)
            for (ox = 0; ox < g->out_w; ox++, out += step) {
                uint32_t real = gather(g, (const uint8_t *)x, 4u * cw, oy, ox,
                                       (uint8_t *)win, 0);
                const int padded = real < taps;
                if (padded) /* the same walk over all-ones pixels marks the real taps */
                    gather(g, NULL, 4u * cw, oy, ox, (uint8_t *)mask, 0);
                xnor_window(L, win, padded ? mask : NULL, words, (int32_t)(real * g->in_c), out);
            }
        return;
    }
    if (C->kernel == QNN_CONV_INT8_PAIRS) {
        qnn_conv_int8_pairs(C, (const int8_t *)x, out, step, scratch);
        return;
    }
    if (C->kernel == QNN_CONV_BIPOLAR_TABLE) {
        table_conv(C, (const uint8_t *)x, out, step, scratch);
        return;
    }
    {
        const uint32_t window_bytes = taps * g->in_c;
        int8_t *win = (int8_t *)scratch;
        uint32_t *rest = scratch + ((window_bytes + 3u) >> 2);
        for (oy = 0; oy < g->out_h; oy++)
            for (ox = 0; ox < g->out_w; ox++, out += step) {
                gather(g, (const uint8_t *)x, g->in_c, oy, ox, (uint8_t *)win,
                       C->pad_code);
                switch (C->kernel) {
                case QNN_CONV_BIPOLAR_WEIGHTS: qnn_dense_bipolar_weights(L, win, out, rest); break;
                case QNN_CONV_INT8: qnn_dense_int8(L, win, out); break;
                case QNN_CONV_PACKED: qnn_dense_packed(L, win, out); break;
                default: depthwise_window(L, win, taps, out); break;
                }
            }
    }
}

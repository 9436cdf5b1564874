/* The join of a residual network (qnn.h: qnn_add_t). Requantized and multi-threshold
 * outputs go four channels by QNN_ADD_PIXELS pixels through the blocks the int8
 * convolution uses (qnn_requant_block, qnn_threshold_block: each channel's constants
 * loaded once per block, not once per element); other outputs element by element. */
#include "qnn_internal.h"

#define QNN_ADD_PIXELS 32u /* pixels a block: 4 x 32 int32 sums on the stack */

void qnn_add(const qnn_add_t *L, const int8_t *a, const int8_t *b, int8_t *y)
{
    const qnn_dense_t *act = &L->act;
    const uint32_t channels = act->out;
    const int32_t wa = L->wa, wb = L->wb;
    const int blocks = act->out_kind == QNN_OUT_REQUANT ||
                       (act->out_kind == QNN_OUT_INT8 && act->count > 1u);
    int32_t sums[4u * QNN_ADD_PIXELS];
    uint32_t p, c, k, r, word = 0; /* qnn_emit's bit word: unused, an add stores int8 codes */
    if (!blocks) {
        for (p = 0; p < L->pixels; p++, a += channels, b += channels, y += channels)
            for (c = 0; c < channels; c++)
                qnn_emit(act, c, wa * a[c] + wb * b[c], y, &word);
        return;
    }
    for (p = 0; p < L->pixels; p += QNN_ADD_PIXELS) {
        const uint32_t n = L->pixels - p < QNN_ADD_PIXELS ? L->pixels - p : QNN_ADD_PIXELS;
        const uint32_t at = p * channels;
        for (c = 0; c < channels; c += 4u) {
            const uint32_t rows = channels - c < 4u ? channels - c : 4u;
            for (k = 0; k < n; k++)
                for (r = 0; r < rows; r++) {
                    const uint32_t e = at + k * channels + c + r;
                    sums[4u * k + r] = wa * a[e] + wb * b[e];
                }
            if (act->out_kind == QNN_OUT_REQUANT)
                qnn_requant_block(act, c, rows, sums, n, y + at, channels);
            else
                qnn_threshold_block(act, c, rows, sums, n, y + at, channels);
        }
    }
}

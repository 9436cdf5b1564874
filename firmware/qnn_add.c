/* The join of a residual network (qnn.h: qnn_add_t). */
#include "qnn_internal.h"

void qnn_add(const qnn_add_t *L, const int8_t *a, const int8_t *b, int8_t *y)
{
    const qnn_dense_t *act = &L->act;
    const uint32_t channels = act->out;
    const int32_t wa = L->wa, wb = L->wb;
    uint32_t p, c, word = 0; /* qnn_emit's bit word: unused, an add stores int8 codes */
    for (p = 0; p < L->pixels; p++, a += channels, b += channels, y += channels)
        for (c = 0; c < channels; c++)
            qnn_emit(act, c, wa * a[c] + wb * b[c], y, &word);
}

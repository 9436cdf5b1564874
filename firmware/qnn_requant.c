/* A requantized layer's output code (qnn.h: QNN_OUT_REQUANT). */
#include "qnn_internal.h"

int8_t qnn_requant_code(const qnn_requant_t *r, uint32_t o, int32_t acc)
{
    const int32_t v = r->out_offset + qnn_requantize(acc, r->multiplier[o], r->shift[o]);
    return (int8_t)(v < r->act_min ? r->act_min : v > r->act_max ? r->act_max : v);
}

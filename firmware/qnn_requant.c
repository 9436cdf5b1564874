/* A requantized layer's output code (qnn.h: QNN_OUT_REQUANT). */
#include "qnn_internal.h"

int8_t qnn_requant_code(const qnn_requant_t *r, uint32_t o, int32_t acc)
{
    const int32_t v = r->out_offset + qnn_requantize(acc, r->multiplier[o], r->shift[o]);
    return (int8_t)(v < r->act_min ? r->act_min : v > r->act_max ? r->act_max : v);
}

/* The multipliers are in [0, 2^31) (qnn_requant_t), so SRDHM never saturates, and with 2m
 * taken as unsigned, floor((a * m + 2^30) / 2^31) = floor((a * 2m + 2^31) / 2^32): the high
 * word of one 64-bit multiply-add (mulhsu and mul on RV32), no 64-bit shift. */
void qnn_requant_block(const qnn_dense_t *L, uint32_t o, uint32_t rows, const int32_t *sums,
                       uint32_t n, int8_t *y, uint32_t step)
{
    const qnn_requant_t *r = &L->requant;
    const int32_t offset = r->out_offset, lo = r->act_min, hi = r->act_max;
    uint32_t row;
    for (row = 0; row < rows; row++) {
        const int32_t bias = L->bias ? L->bias[o + row] : 0, shift = r->shift[o + row];
        const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
        const int64_t m2 = (int64_t)((uint32_t)r->multiplier[o + row] << 1);
        const int32_t *acc = sums + row, *const end = acc + 4u * n;
        int8_t *dst = y + o + row;
        for (; acc != end; acc += 4, dst += step) {
            const int32_t a = (int32_t)((uint32_t)(*acc + bias) << left);
            const int32_t high = (int32_t)(((int64_t)a * m2 + ((int64_t)1 << 31)) >> 32);
            int32_t v = offset + qnn_rounding_divide_by_pot(high, right);
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            *dst = (int8_t)(uint8_t)(uint32_t)v;
        }
    }
}

/* A requantized layer's output codes (qnn.h: QNN_OUT_REQUANT, qnn_requant_t). */
#include "qnn_internal.h"

int8_t qnn_requant_code(const qnn_requant_t *r, uint32_t o, int32_t acc)
{
    if (r->rounding == QNN_ROUND_HALF_EVEN)
        return (int8_t)qnn_requantize_half_even(acc, r->multiplier[o], r->bias[o], r->shift[o],
                                                r->out_offset, r->act_min, r->act_max);
    return (int8_t)qnn_clamp(r->out_offset + qnn_requantize(acc, r->multiplier[o], r->shift[o]),
                             r->act_min, r->act_max);
}

/* channel o's half_even codes at the positions acc .. end (a stride of 4); the common
 * n >= 32 in a loop of its own (GCC -O2 does not unswitch the shift's test) */
static void half_even_row(const qnn_requant_t *r, uint32_t o, const int32_t *acc,
                          const int32_t *end, int8_t *dst, uint32_t step)
{
    const int32_t m = r->multiplier[o], n = r->shift[o];
    const int32_t offset = r->out_offset, lo = r->act_min, hi = r->act_max;
    const int64_t c = r->bias[o];
    if (n < 32)
        for (; acc != end; acc += 4, dst += step)
            *dst = (int8_t)qnn_requantize_half_even(*acc, m, c, n, offset, lo, hi);
    else
        for (; acc != end; acc += 4, dst += step)
            *dst = (int8_t)qnn_clamp(offset + qnn_half_even_high(qnn_mul_ss(*acc, m) + c, n - 32),
                                     lo, hi);
}

/* tflite: the multipliers are in [0, 2^31) (qnn_requant_t), so SRDHM never saturates, and
 * with 2m taken as unsigned, floor((a * m + 2^30) / 2^31) = floor((a * 2m + 2^31) / 2^32):
 * the high word of one 64-bit multiply-add (mulhsu and mul on RV32), no 64-bit shift. */
static void tflite_row(const qnn_dense_t *L, uint32_t o, const int32_t *acc,
                       const int32_t *end, int8_t *dst, uint32_t step)
{
    const qnn_requant_t *r = &L->requant;
    const int32_t offset = r->out_offset, lo = r->act_min, hi = r->act_max;
    const int32_t bias = L->bias ? L->bias[o] : 0, shift = r->shift[o];
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const uint32_t m2 = (uint32_t)r->multiplier[o] << 1;
    for (; acc != end; acc += 4, dst += step) {
        const int32_t a = (int32_t)((uint32_t)(*acc + bias) << left);
        const int32_t high = (int32_t)((qnn_mul_su(a, m2) + ((int64_t)1 << 31)) >> 32);
        *dst = (int8_t)qnn_clamp(offset + qnn_rounding_divide_by_pot(high, right), lo, hi);
    }
}

void qnn_requant_block(const qnn_dense_t *L, uint32_t o, uint32_t rows, const int32_t *sums,
                       uint32_t n, int8_t *y, uint32_t step)
{
    uint32_t row;
    for (row = 0; row < rows; row++) {
        if (L->requant.rounding == QNN_ROUND_HALF_EVEN)
            half_even_row(&L->requant, o + row, sums + row, sums + row + 4u * n, y + o + row,
                          step);
        else
            tflite_row(L, o + row, sums + row, sums + row + 4u * n, y + o + row, step);
    }
}

/* Conversions at the model's edges: input codes to storage, outputs to a class. */
#include "qnn.h"

void qnn_pack_bipolar(const int8_t *codes, uint32_t n, uint32_t *bits)
{
    uint32_t i, k;
    for (i = 0; i + 32u <= n; i += 32u) {
        /* from the word's top code down, four codes per shift: no variable shifts */
        const int8_t *c = codes + i + 32;
        uint32_t word = 0;
        for (k = 0; k < 8u; k++, c -= 4)
            word = word << 4 | (uint32_t)(c[-1] > 0) << 3 | (uint32_t)(c[-2] > 0) << 2 |
                   (uint32_t)(c[-3] > 0) << 1 | (uint32_t)(c[-4] > 0);
        *bits++ = word;
    }
    if (i < n) {
        uint32_t word = 0;
        for (k = n; k > i; k--)
            word = word << 1 | (uint32_t)(codes[k - 1u] > 0);
        *bits = word;
    }
}

void qnn_uint8_to_storage(const uint8_t *codes, uint32_t n, int8_t *out)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        out[i] = (int8_t)((int32_t)codes[i] - 128);
}

void qnn_codes_to_i32(const int8_t *codes, uint32_t n, int32_t offset, int32_t *out)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        out[i] = (int32_t)codes[i] + offset;
}

uint32_t qnn_argmax_i32(const int32_t *v, uint32_t n)
{
    uint32_t i, best = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

void qnn_pack_bipolar_frame(const int8_t *codes, uint32_t pixels, uint32_t channels,
                            uint32_t *bits)
{
    const uint32_t words = (channels + 31u) >> 5;
    uint32_t p;
    for (p = 0; p < pixels; p++, codes += channels, bits += words)
        qnn_pack_bipolar(codes, channels, bits);
}

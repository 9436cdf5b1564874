/* 2- and 4-bit weights, packed LSB first, x int8 inputs. Each field holds w + 2^(bits-1)
 * (0 .. 2^bits - 1): the -2^(bits-1) comes back once per layer as w_offset * sum(x), so
 * that unpacking a weight is a shift and a mask, no sign extension. The byte loops are
 * unrolled by hand: GCC -O2 keeps a 4-trip inner loop rolled. */
#include "qnn_internal.h"

/* the n < 8 / bits fields of a row's last byte (not read when n = 0: it is past the row) */
static int32_t dot_tail(const uint8_t *last, const int8_t *x, uint32_t n, uint32_t bits)
{
    const uint32_t mask = (1u << bits) - 1u;
    uint32_t b = n ? *last : 0u, k;
    int32_t acc = 0;
    for (k = 0; k < n; k++, b >>= bits)
        acc += x[k] * (int32_t)(b & mask);
    return acc;
}

static int32_t dot_packed2(const uint8_t *w, const int8_t *x, uint32_t in)
{
    const uint8_t *end = w + in / 4u;
    int32_t acc = 0;
    for (; w != end; w++, x += 4) {
        const int32_t b = *w;
        acc += x[0] * (b & 3) + x[1] * ((b >> 2) & 3) + x[2] * ((b >> 4) & 3) + x[3] * (b >> 6);
    }
    return acc + dot_tail(end, x, in & 3u, 2u);
}

static int32_t dot_packed4(const uint8_t *w, const int8_t *x, uint32_t in)
{
    const uint8_t *end = w + in / 2u;
    int32_t acc = 0;
    for (; w != end; w++, x += 2) {
        const int32_t b = *w;
        acc += x[0] * (b & 15) + x[1] * (b >> 4);
    }
    return acc + dot_tail(end, x, in & 1u, 4u);
}

void qnn_dense_packed(const qnn_dense_t *L, const int8_t *x, void *y)
{
    const uint32_t in = L->in, bits = L->weight_bits;
    const uint32_t stride = (in * bits + 7u) / 8u;
    const uint8_t *w = (const uint8_t *)L->weights;
    const int32_t start = L->w_offset * qnn_sum_i8(x, in);
    int32_t (*const dot)(const uint8_t *, const int8_t *, uint32_t) =
        bits == 2u ? dot_packed2 : dot_packed4;
    uint32_t word = 0;
    uint32_t o;
    for (o = 0; o < L->out; o++, w += stride)
        qnn_emit(L, o, start + dot(w, x, in), y, &word);
}

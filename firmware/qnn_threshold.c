/* Multi-threshold activation: how many of a channel's sorted thresholds acc reaches.
 * bench/bench_firmware.py measures both searches on RV32IMC: a linear scan wins up to
 * about 15 thresholds (4-bit activations), binary search beyond (255 thresholds: ~90
 * against ~650 instructions per channel, measured before the unrolled search); the
 * 2^k - 1 thresholds of a k-bit activation go to a search unrolled for that count. */
#include "qnn_internal.h"

uint32_t qnn_threshold_count_linear(const int32_t *t, uint32_t n, int32_t acc)
{
    uint32_t c = 0;
    while (c < n && t[c] <= acc)
        c++;
    return c;
}

/* one halving of a search over 2h - 1 thresholds from b: b moves past the middle one
 * where acc reaches it (a load, a branch and an add on RV32) */
#define QNN_HALVE(h) \
    if (b[(h) - 1] <= acc) \
        b += (h)

static inline uint32_t count_binary(const int32_t *t, uint32_t n, int32_t acc)
{
    const int32_t *b = t;
    switch (n) { /* 2^k - 1 thresholds: k halvings of fixed sizes */
    case 65535: QNN_HALVE(32768); /* fall through */
    case 32767: QNN_HALVE(16384); /* fall through */
    case 16383: QNN_HALVE(8192); /* fall through */
    case 8191: QNN_HALVE(4096); /* fall through */
    case 4095: QNN_HALVE(2048); /* fall through */
    case 2047: QNN_HALVE(1024); /* fall through */
    case 1023: QNN_HALVE(512); /* fall through */
    case 511: QNN_HALVE(256); /* fall through */
    case 255: QNN_HALVE(128); /* fall through */
    case 127: QNN_HALVE(64); /* fall through */
    case 63: QNN_HALVE(32); /* fall through */
    case 31: QNN_HALVE(16); /* fall through */
    case 15: QNN_HALVE(8); /* fall through */
    case 7: QNN_HALVE(4); /* fall through */
    case 3: QNN_HALVE(2); /* fall through */
    case 1: QNN_HALVE(1); /* fall through */
    case 0: return (uint32_t)(b - t);
    default: break;
    }
    while (n) { /* upper bound: b points past the last threshold <= acc */
        uint32_t half = n >> 1;
        if (b[half] <= acc) {
            b += half + 1u;
            n -= half + 1u;
        } else {
            n = half;
        }
    }
    return (uint32_t)(b - t);
}

uint32_t qnn_threshold_count_binary(const int32_t *t, uint32_t n, int32_t acc)
{
    return count_binary(t, n, acc);
}

uint32_t qnn_threshold_count(const int32_t *t, uint32_t n, int32_t acc)
{
    return n < QNN_LINEAR_THRESHOLDS && (n & (n + 1u))
               ? qnn_threshold_count_linear(t, n, acc)
               : qnn_threshold_count_binary(t, n, acc);
}

void qnn_threshold_block(const qnn_dense_t *L, uint32_t o, uint32_t rows, const int32_t *sums,
                         uint32_t n, int8_t *y, uint32_t step)
{
    const uint32_t count = L->count;
    const int32_t base = L->base, level = L->step;
    uint32_t row;
    for (row = 0; row < rows; row++) {
        const int32_t *const t = L->thresholds + (o + row) * count;
        const int32_t bias = L->bias ? L->bias[o + row] : 0;
        const int32_t *acc = sums + row, *const end = acc + 4u * n;
        int8_t *dst = y + o + row;
        for (; acc != end; acc += 4, dst += step)
            *dst = (int8_t)(base + level * (int32_t)count_binary(t, count, *acc + bias));
    }
}

/* Multi-threshold activation: how many of a channel's sorted thresholds acc reaches.
 * bench/bench_firmware.py measures both searches on RV32IMC: a linear scan wins up to
 * about 15 thresholds (4-bit activations), binary search beyond (255 thresholds: ~90
 * against ~650 instructions per channel). */
#include "qnn.h"

uint32_t qnn_threshold_count_linear(const int32_t *t, uint32_t n, int32_t acc)
{
    uint32_t c = 0;
    while (c < n && t[c] <= acc)
        c++;
    return c;
}

uint32_t qnn_threshold_count_binary(const int32_t *t, uint32_t n, int32_t acc)
{
    const int32_t *b = t;
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

uint32_t qnn_threshold_count(const int32_t *t, uint32_t n, int32_t acc)
{
    return n < QNN_LINEAR_THRESHOLDS ? qnn_threshold_count_linear(t, n, acc)
                                     : qnn_threshold_count_binary(t, n, acc);
}

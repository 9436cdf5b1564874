/* Harness of bench/bench_firmware.py: instructions (RISC-V instret) per output channel of
 * each activation form as a layer stores it (qnn_emit): 255 thresholds (binary search)
 * against the requantization in both roundings, over the accumulators of cases.h (written
 * by the bench), which also gives each form's expected codes. */
#include <stdio.h>
#include <stdlib.h>
#include "qnn_internal.h"
#include "qnn_instret.h"
#include "cases.h"

static const qnn_dense_t thresholds = {0, thr, 0, 0, 1, CHANNELS, 255, THR_BASE, THR_STEP, QNN_OUT_INT8,
                                       8, 8, 1, {0, 0, 0, 0, 0, 0, 0}};
static const qnn_dense_t tflite = {0, 0, tf_bias, 0, 1, CHANNELS, 0, 0, 0, QNN_OUT_REQUANT, 8, 8, 1,
                                   {tf_mult, tf_shift, 0, ZERO_POINT, -128, 127, QNN_ROUND_TFLITE}};
static const qnn_dense_t half_even = {0, 0, 0, 0, 1, CHANNELS, 0, 0, 0, QNN_OUT_REQUANT, 8, 8, 1,
                                      {he_mult, he_shift, he_bias, ZERO_POINT, -128, 127,
                                       QNN_ROUND_HALF_EVEN}};

/* instructions per channel of layer L over every accumulator vector; mismatches counted */
static uint32_t cost(const qnn_dense_t *L, const int8_t (*want)[CHANNELS], int *bad)
{
    static int8_t y[CHANNELS];
    uint32_t total = 0, word = 0, v, o;
    for (v = 0; v < VECTORS; v++) {
        uint32_t t0 = qnn_instret();
        for (o = 0; o < CHANNELS; o++)
            qnn_emit(L, o, accs[v][o], y, &word);
        total += qnn_instret() - t0;
        for (o = 0; o < CHANNELS; o++)
            *bad += y[o] != want[v][o];
    }
    return total;
}

int main(void)
{
    int bad = 0;
    uint32_t t = cost(&thresholds, want_thr, &bad), r = cost(&tflite, want_tf, &bad);
    uint32_t h = cost(&half_even, want_he, &bad);
    printf("activation thresholds %lu tflite %lu half_even %lu per %lu channels mismatches %d\n",
           (unsigned long)t, (unsigned long)r, (unsigned long)h,
           (unsigned long)(VECTORS * CHANNELS), bad);
    exit(0);
}

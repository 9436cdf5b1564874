/* Harness of bench/bench_firmware.py: instructions (RISC-V instret) of the binary search
 * against the linear scan over thresholds, per case of cases.h (written by the bench). */
#include <stdio.h>
#include <stdlib.h>
#include "qnn.h"
#include "qnn_instret.h"
#include "cases.h"

int main(void)
{
    unsigned k, i;
    for (k = 0; k < CASES; k++) {
        uint32_t t0, t1, t2, check = 0;
        volatile uint32_t sink;
        t0 = qnn_instret();
        for (i = 0; i < ACCS; i++)
            check += qnn_threshold_count_binary(thr[k], counts[k], accs[i]);
        t1 = qnn_instret();
        for (i = 0; i < ACCS; i++)
            check -= qnn_threshold_count_linear(thr[k], counts[k], accs[i]);
        t2 = qnn_instret();
        sink = check;
        printf("thresholds %lu binary %lu linear %lu check %lu\n", (unsigned long)counts[k],
               (unsigned long)(t1 - t0), (unsigned long)(t2 - t1), (unsigned long)sink);
    }
    exit(0);
}

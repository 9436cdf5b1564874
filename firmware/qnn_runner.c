/* Test runner for a generated model on the host or under QEMU (semihosting file I/O):
 * reads input codes (qflow_input_t, QFLOW_IN_FEATURES per sample) from QNN_RUNNER_INPUT,
 * writes int32 accumulators to QNN_RUNNER_OUTPUT and prints instructions per inference
 * (RISC-V instret) as "qnn-stats" lines. Paths are compile-time strings because the
 * semihosting start-up code passes no arguments. Every path ends in exit(), which stops
 * QEMU through semihosting. */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"
#include "qnn_instret.h"

#ifndef QNN_RUNNER_INPUT
#error "define QNN_RUNNER_INPUT and QNN_RUNNER_OUTPUT as string paths"
#endif

#if QFLOW_PROFILE
static uint32_t marks[QFLOW_STAGES + 1];
void qflow_profile_mark(unsigned stage) { marks[stage] = qnn_instret(); }
#endif

int main(void)
{
    static qflow_input_t in[QFLOW_IN_FEATURES];
    static int32_t out[QFLOW_OUT_FEATURES];
    uint32_t n = 0, best = UINT32_MAX, worst = 0;
    unsigned long long total = 0;
#if QFLOW_PROFILE
    uint32_t stage_best[QFLOW_STAGES];
    unsigned s;
    for (s = 0; s < QFLOW_STAGES; s++)
        stage_best[s] = UINT32_MAX;
#endif
    FILE *fi = fopen(QNN_RUNNER_INPUT, "rb");
    FILE *fo = fopen(QNN_RUNNER_OUTPUT, "wb");
    if (!fi || !fo || qflow_model_init() != 0) {
        printf("qnn-runner: cannot open %s / %s or init the model\n", QNN_RUNNER_INPUT,
               QNN_RUNNER_OUTPUT);
        exit(2);
    }
    while (fread(in, sizeof in, 1, fi) == 1) {
        uint32_t t0 = qnn_instret(), dt;
        qflow_model_run(in, out);
        dt = qnn_instret() - t0;
        best = dt < best ? dt : best;
        worst = dt > worst ? dt : worst;
        total += dt;
#if QFLOW_PROFILE
        for (s = 0; s < QFLOW_STAGES; s++)
            if (marks[s + 1] - marks[s] < stage_best[s])
                stage_best[s] = marks[s + 1] - marks[s];
#endif
        if (fwrite(out, sizeof out, 1, fo) != 1) {
            printf("qnn-runner: write failed\n");
            exit(3);
        }
        n++;
    }
    fclose(fi);
    fclose(fo);
    printf("qnn-stats samples %lu instret_min %lu instret_max %lu instret_total %llu\n",
           (unsigned long)n, (unsigned long)best, (unsigned long)worst, total);
#if QFLOW_PROFILE
    for (s = 0; s < QFLOW_STAGES; s++)
        printf("qnn-stage %u instret_min %lu\n", s, (unsigned long)stage_best[s]);
#endif
    exit(0); /* returning from main would leave QEMU running: picolibc's crt0 loops */
}

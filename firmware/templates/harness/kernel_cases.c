/* Harness of tests/helpers/firmware.py (kernel_harness): runs every case's layer on its input with
 * one kernel and compares the output, byte for byte, with numpy's. Cases are a table, so
 * that the harness's code stays small (ASan builds of long straight-line mains are slow). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qnn.h"

typedef struct {
    const qnn_dense_t *layer;
    const void *x, *want;
    unsigned kernel, bytes; /* kernel: index in the test's KERNELS */
} qnn_case_t;

@definitions@

static const qnn_case_t cases[] = {
@cases@
};
static const char *const names[] = {
@names@
};

static int32_t y[4096];
static uint32_t scratch[2048]; /* the largest: 784 inputs' tables */

static void run_case(const qnn_case_t *c)
{
    memset(y, 0x55, sizeof y);
    memset(scratch, 0xAA, sizeof scratch);
    switch (c->kernel) {
    case 0: qnn_dense_xnor(c->layer, (const uint32_t *)c->x, y); break;
    case 1: qnn_dense_bipolar_weights(c->layer, (const int8_t *)c->x, y, scratch); break;
    case 2: qnn_dense_int8_pairs(c->layer, (const int8_t *)c->x, y, scratch); break;
    case 3: qnn_dense_int8(c->layer, (const int8_t *)c->x, y); break;
    case 4: qnn_dense_packed(c->layer, (const int8_t *)c->x, y); break;
    case 5: qnn_dense_bipolar_table(c->layer, (const int8_t *)c->x, y, scratch); break;
    default: qnn_dense_xnor_sliced(c->layer, (const uint32_t *)c->x, y); break;
    }
}

int main(void)
{
    unsigned k;
    int bad = 0;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        run_case(&cases[k]);
        if (memcmp(y, cases[k].want, cases[k].bytes)) {
            printf("case %u (layer %s) differs\n", k, names[k]);
            bad++;
        }
    }
    printf("kernel cases failed: %d\n", bad);
    exit(bad != 0);
}

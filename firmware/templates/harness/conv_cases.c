/* Harness of tests/backends/firmware/test_firmware_cnn.py: runs every case's convolution or max pool on its
 * frame and compares the output, byte for byte, with numpy's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qnn.h"

typedef struct {
    const qnn_conv_t *conv; /* NULL: a pool */
    const qnn_pool_t *pool;
    const void *x, *want;
    unsigned bytes;
} qnn_case_t;

@definitions@

static const qnn_case_t cases[] = {
@cases@
};
static const char *const names[] = {
@names@
};

static uint32_t y[@out_words@];
static uint32_t scratch[@scratch_words@];

int main(void)
{
    unsigned k;
    int bad = 0;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memset(y, 0x55, sizeof y);
        memset(scratch, 0xAA, sizeof scratch);
        if (cases[k].conv)
            qnn_conv2d(cases[k].conv, cases[k].x, y, scratch);
        else
            qnn_maxpool(cases[k].pool, cases[k].x, y);
        if (memcmp(y, cases[k].want, cases[k].bytes)) {
            printf("case %u (%s) differs\n", k, names[k]);
            bad++;
        }
    }
    printf("conv cases failed: %d\n", bad);
    exit(bad != 0);
}

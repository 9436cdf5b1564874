/* Harness of tests/backends/firmware/test_firmware_residual.py: runs every case's add on its
 * two frames and compares the output, byte for byte, with golden's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qnn.h"

typedef struct {
    const qnn_add_t *add;
    const int8_t *a, *b, *want;
    unsigned bytes;
} qnn_case_t;

@definitions@

static const qnn_case_t cases[] = {
@cases@
};
static const char *const names[] = {
@names@
};

static int8_t y[@out_bytes@];

int main(void)
{
    unsigned k;
    int bad = 0;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memset(y, 0x55, sizeof y);
        qnn_add(cases[k].add, cases[k].a, cases[k].b, y);
        if (memcmp(y, cases[k].want, cases[k].bytes)) {
            printf("case %u (%s) differs\n", k, names[k]);
            bad++;
        }
    }
    printf("add cases failed: %d\n", bad);
    exit(bad != 0);
}

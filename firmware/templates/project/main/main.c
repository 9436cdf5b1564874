/* qflow example app: runs the model on embedded test vectors, prints each prediction,
 * the agreement with the golden model's accumulators and microseconds per inference. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "esp_timer.h"
#include "model.h"
#include "test_vectors.h"

#define REPEATS 20

void app_main(void)
{
    static int32_t acc[QFLOW_OUT_FEATURES];
    int n, r, equal = 0, classes = 0;
    int64_t t0, elapsed;
    if (qflow_model_init() != 0) {
        printf("qflow: cannot allocate the %d-byte arena\n", QFLOW_ARENA_BYTES);
        return;
    }
    for (n = 0; n < QFLOW_TEST_VECTORS; n++) {
        int same, pred;
        qflow_model_run(qflow_test_inputs[n], acc);
        same = memcmp(acc, qflow_test_expected[n], sizeof acc) == 0;
        pred = qflow_model_predict(acc);
        equal += same;
        classes += pred == qflow_test_classes[n];
        printf("qflow: sample %d predicted %d expected %d accumulators %s\n", n, pred,
               qflow_test_classes[n], same ? "equal" : "DIFFER");
    }
    t0 = esp_timer_get_time();
    for (r = 0; r < REPEATS; r++)
        for (n = 0; n < QFLOW_TEST_VECTORS; n++)
            qflow_model_run(qflow_test_inputs[n], acc);
    elapsed = esp_timer_get_time() - t0;
    printf("qflow: %d/%d accumulators equal, %d/%d predictions equal to the golden model\n",
           equal, QFLOW_TEST_VECTORS, classes, QFLOW_TEST_VECTORS);
    printf("qflow: %" PRId64 " us per inference (mean of %d), arena %d bytes\n",
           elapsed / (REPEATS * QFLOW_TEST_VECTORS), REPEATS * QFLOW_TEST_VECTORS,
           QFLOW_ARENA_BYTES);
}

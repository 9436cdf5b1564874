/* Host stand-in for ESP-IDF's esp_timer.h, to build the example app on the host
 * (tests/backends/firmware/test_firmware_models.py). */
#ifndef ESP_TIMER_H
#define ESP_TIMER_H

#include <stdint.h>

int64_t esp_timer_get_time(void);

#endif

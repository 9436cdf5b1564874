/* Host stand-ins for what ESP-IDF gives the example app: esp_timer_get_time and a main
 * that calls app_main. */
#include <stdint.h>
#include <time.h>

#include "esp_timer.h"

void app_main(void);

int64_t esp_timer_get_time(void) { return (int64_t)clock(); }

int main(void)
{
    app_main();
    return 0;
}

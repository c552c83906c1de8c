/* log.h -- the library's only way to say anything: the host's callback. */
#ifndef SD_CORE_LOG_H
#define SD_CORE_LOG_H

#include "error.h"

/* Format and deliver a message if level passes the current threshold and a
 * callback is installed. Cheap when nobody listens. */
void sd_log(int32_t level, const char *fmt, ...) SD_PRINTF(2, 3);

#define SD_LOGE(...) sd_log(SMDIFF_LOG_ERROR, __VA_ARGS__)
#define SD_LOGW(...) sd_log(SMDIFF_LOG_WARN, __VA_ARGS__)
#define SD_LOGI(...) sd_log(SMDIFF_LOG_INFO, __VA_ARGS__)
#define SD_LOGD(...) sd_log(SMDIFF_LOG_DEBUG, __VA_ARGS__)

#endif

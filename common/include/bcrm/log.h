/* log.h: one JSON object per line on stderr.
 *
 *   log_info("campaign completed", "{s:s, s:i}", "campaign_id", id, "sent", n);
 *
 * The second argument is a jansson json_pack() format for extra fields (or NULL).
 * Never pass a token, a key or a user's profile data as a field: logs are read by
 * people and shipped to places the vault does not control.
 */
#ifndef BCRM_LOG_H
#define BCRM_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };

/* Sets the service name stamped on every line and the minimum level
 * (BCRM_LOG_LEVEL: debug, info, warn, error). */
void log_init(const char *service);
void log_emit(enum log_level level, const char *msg, const char *fmt, ...);

#define log_debug(msg, ...) log_emit(LOG_DEBUG, (msg), __VA_ARGS__)
#define log_info(msg, ...) log_emit(LOG_INFO, (msg), __VA_ARGS__)
#define log_warn(msg, ...) log_emit(LOG_WARN, (msg), __VA_ARGS__)
#define log_error(msg, ...) log_emit(LOG_ERROR, (msg), __VA_ARGS__)
#define log_fatal(msg, ...) log_emit(LOG_FATAL, (msg), __VA_ARGS__)

#endif

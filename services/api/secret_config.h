/* secret_config.h: secrets the api reads from its configuration (webhook signing
 * secrets, the Messenger verify token), from NAME or from the file NAME_FILE.
 *
 * Secrets live in sodium_malloc'd memory (locked, wiped on free) and are never
 * logged. A file must not be readable by group or others, as with identity keys.
 */
#ifndef BCRM_API_SECRET_CONFIG_H
#define BCRM_API_SECRET_CONFIG_H

/* The value of the variable name, or the content of the file named by name_FILE
 * (one trailing newline removed). NULL when neither is set. Setting both, an
 * unreadable or too-open file, or an empty value is fatal (exit 2, naming the
 * variable), like every wrong configuration (config.h). Free with sodium_free(). */
char *secret_config(const char *name);

#endif

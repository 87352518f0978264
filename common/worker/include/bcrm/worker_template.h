/* worker_template.h: personalisation of message text.
 *
 * A template names profile fields between double braces, with an optional
 * default after a bar: "Hi {{first_name|there}}, from {{ name }}". A field whose
 * value is missing or empty is replaced by its default, or by nothing. Anything
 * that is not a complete placeholder ("{{", "{{}}", "{x}") is copied unchanged.
 * Field names are lowercase letters, digits and underscores.
 */
#ifndef BCRM_WORKER_TEMPLATE_H
#define BCRM_WORKER_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Returns the value of field (len bytes, not NUL-terminated) or NULL when there is
 * none. The returned string is borrowed and must outlive the render call. */
typedef const char *(*template_lookup_fn)(void *ctx, const char *field, size_t len);

/* True when text holds at least one placeholder, i.e. a profile is needed. */
bool template_has_placeholders(const char *text);
/* Renders text; returns a malloc'd string (free with free()), NULL when out of
 * memory. lookup may be NULL: every field then takes its default. */
char *template_render(const char *text, template_lookup_fn lookup, void *ctx);
/* Renders every string inside a JSON value in place (Slack blocks). 0 or -1. */
int template_render_json(json_t *value, template_lookup_fn lookup, void *ctx);
/* True when any string inside value holds a placeholder. */
bool template_json_has_placeholders(const json_t *value);

#endif

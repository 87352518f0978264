/* template.c: {{field|default}} placeholders in message text. */
#include "bcrm/worker_template.h"

#include <stdlib.h>
#include <string.h>

/* A placeholder found in text: where it starts and ends, its field and default. */
struct placeholder {
    const char *start, *end; /* end is one past the closing "}}" */
    const char *field;
    size_t field_len;
    const char *fallback; /* NULL when there is no "|" */
    size_t fallback_len;
};

static bool is_field_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parses a placeholder starting at p ("{{"); false when p does not start one. */
static bool placeholder_parse(const char *p, struct placeholder *ph)
{
    if (p[0] != '{' || p[1] != '{') {
        return false;
    }
    const char *q = p + 2;
    while (*q == ' ') {
        q++;
    }
    ph->field = q;
    while (is_field_char(*q)) {
        q++;
    }
    ph->field_len = (size_t)(q - ph->field);
    if (ph->field_len == 0) {
        return false;
    }
    while (*q == ' ') {
        q++;
    }
    ph->fallback = NULL;
    ph->fallback_len = 0;
    if (*q == '|') {
        q++;
        const char *close = strstr(q, "}}");
        if (close == NULL) {
            return false;
        }
        /* A default cannot span another placeholder's opening. */
        const char *open = strstr(q, "{{");
        if (open != NULL && open < close) {
            return false;
        }
        ph->fallback = q;
        ph->fallback_len = (size_t)(close - q);
        /* Trim spaces around the default, as around the field. */
        while (ph->fallback_len > 0 && *ph->fallback == ' ') {
            ph->fallback++;
            ph->fallback_len--;
        }
        while (ph->fallback_len > 0 && ph->fallback[ph->fallback_len - 1] == ' ') {
            ph->fallback_len--;
        }
        q = close;
    }
    if (q[0] != '}' || q[1] != '}') {
        return false;
    }
    ph->start = p;
    ph->end = q + 2;
    return true;
}

bool template_has_placeholders(const char *text)
{
    struct placeholder ph;
    for (const char *p = text != NULL ? strstr(text, "{{") : NULL; p != NULL;
         p = strstr(p + 1, "{{")) {
        if (placeholder_parse(p, &ph)) {
            return true;
        }
    }
    return false;
}

/* A growing output string. */
struct out_buf {
    char *data;
    size_t len, cap;
    bool failed;
};

static void out_append(struct out_buf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 64;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

char *template_render(const char *text, template_lookup_fn lookup, void *ctx)
{
    struct out_buf b = {0};
    out_append(&b, "", 0);
    const char *p = text;
    while (*p != '\0') {
        const char *open = strstr(p, "{{");
        struct placeholder ph;
        if (open == NULL) {
            out_append(&b, p, strlen(p));
            break;
        }
        if (!placeholder_parse(open, &ph)) {
            /* Not a placeholder: copy through the first brace and look again. */
            out_append(&b, p, (size_t)(open - p) + 1);
            p = open + 1;
            continue;
        }
        out_append(&b, p, (size_t)(open - p));
        const char *value = lookup != NULL ? lookup(ctx, ph.field, ph.field_len) : NULL;
        if (value != NULL && *value != '\0') {
            out_append(&b, value, strlen(value));
        } else if (ph.fallback != NULL) {
            out_append(&b, ph.fallback, ph.fallback_len);
        }
        p = ph.end;
    }
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

int template_render_json(json_t *value, template_lookup_fn lookup, void *ctx)
{
    if (json_is_string(value)) {
        if (!template_has_placeholders(json_string_value(value))) {
            return 0;
        }
        char *rendered = template_render(json_string_value(value), lookup, ctx);
        if (rendered == NULL) {
            return -1;
        }
        int rv = json_string_set(value, rendered);
        free(rendered);
        return rv;
    }
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach(value, key, member)
        {
            if (template_render_json(member, lookup, ctx) != 0) {
                return -1;
            }
        }
    } else if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            if (template_render_json(item, lookup, ctx) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

bool template_json_has_placeholders(const json_t *value)
{
    if (json_is_string(value)) {
        return template_has_placeholders(json_string_value(value));
    }
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member)
        {
            if (template_json_has_placeholders(member)) {
                return true;
            }
        }
    } else if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            if (template_json_has_placeholders(item)) {
                return true;
            }
        }
    }
    return false;
}

/* deliveries.c: a campaign's deliveries, as JSON pages or CSV (Accept: text/csv, or
 * ?format=csv for a plain download link, which cannot set Accept).
 * A delivery names its recipient by platform id only (design.md: no profile data
 * is stored), so nothing here can leak a name or an email. */
#include "api.h"

#include "bcrm/db.h"
#include "bcrm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D_ID, D_RECIPIENT, D_RUN, D_DUE, D_STATUS, D_ATTEMPTS, D_ERROR, D_MESSAGE, D_SENT, D_READ };
static const char *const delivery_columns[] = {
    "id",         "recipient_id",        "run_id",  "due_at", "status", "attempts",
    "last_error", "platform_message_id", "sent_at", "read_at"};
#define DELIVERY_NCOLS 10

static bool valid_status(const char *s)
{
    static const char *const statuses[] = {"pending", "sending", "sent",      "failed",
                                           "unknown", "skipped", "cancelled", "read"};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (strcmp(statuses[i], s) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *delivery_json(const PGresult *res, int row)
{
    json_t *d = json_object();
    for (int col = 0; col < DELIVERY_NCOLS; col++) {
        json_t *value;
        if (PQgetisnull(res, row, col)) {
            value = json_null();
        } else if (col == D_ATTEMPTS) {
            value = json_integer(atoi(PQgetvalue(res, row, col)));
        } else {
            value = json_string(PQgetvalue(res, row, col));
        }
        json_object_set_new(d, delivery_columns[col], value);
    }
    return d;
}

/* A growing text buffer for the CSV answer. */
struct text_buf {
    char *data;
    size_t len, cap;
};

static void buf_append(struct text_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *nd = realloc(b->data, cap);
        if (nd == NULL) {
            abort(); /* out of memory in a request: nothing sensible remains */
        }
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* RFC 4180 quoting; a text cell starting with = + - @ is prefixed with ' so that a
 * spreadsheet does not run a platform's error message as a formula. */
static void csv_cell(struct text_buf *b, const char *s, bool text)
{
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    bool guard = text && strchr("=+-@", s[0]) != NULL && s[0] != '\0';
    if (quote) {
        buf_append(b, "\"", 1);
    }
    if (guard) {
        buf_append(b, "'", 1);
    }
    for (const char *p = s; *p; p++) {
        if (*p == '"') {
            buf_append(b, "\"\"", 2);
        } else {
            buf_append(b, p, 1);
        }
    }
    if (quote) {
        buf_append(b, "\"", 1);
    }
}

static bool wants_csv(const struct api_req *r)
{
    const char *format = http_query(r->http, "format");
    if (format != NULL && strcmp(format, "csv") == 0) {
        return true;
    }
    const char *accept = http_header(r->http, "Accept");
    return accept != NULL && strstr(accept, "text/csv") != NULL;
}

void deliveries_list(struct api_req *r)
{
    const char *id = api_param(r, "campaign");
    bool csv = wants_csv(r);
    int limit;
    if (!api_query_limit(r, csv ? 10000 : 100, csv ? 100000 : 1000, &limit)) {
        return;
    }
    const char *status = http_query(r->http, "status");
    if (status != NULL && !valid_status(status)) {
        api_problem(r, 422, "Invalid parameter", "status",
                    "status must be one of pending, sending, sent, failed, unknown, skipped, "
                    "cancelled, read");
        return;
    }
    char after[32] = "";
    const char *cursor = http_query(r->http, "cursor");
    if (cursor != NULL && cursor[0] != '\0') {
        char *end = NULL;
        if (!api_cursor_decode(cursor, after, sizeof(after)) || after[0] == '\0' ||
            (strtoll(after, &end, 10), *end != '\0')) {
            api_problem(r, 422, "Invalid parameter", "cursor", "cursor is not one this API gave");
            return;
        }
    }
    if (!api_is_uuid(id)) {
        api_problem(r, 404, "Not Found", NULL, "no campaign %s in this org", id);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    const char *pc[] = {r->org_id, id};
    PGresult *res = db_query(conn, "find campaign",
                             "SELECT 1 FROM campaigns WHERE org_id = $1 AND id = $2", 2, pc);
    if (res == NULL || PQntuples(res) != 1) {
        if (res == NULL) {
            api_internal_error(r);
        } else {
            api_problem(r, 404, "Not Found", NULL, "no campaign %s in this org", id);
        }
        PQclear(res);
        return;
    }
    PQclear(res);
    char limit_text[16];
    snprintf(limit_text, sizeof(limit_text), "%d", limit + 1);
    const char *p[] = {id, status, after[0] ? after : NULL, limit_text};
    res = db_query(conn, "list deliveries",
                   "SELECT id, recipient_id, run_id, " API_TS(
                       "due_at") ", status, attempts,"
                                 " last_error, platform_message_id, " API_TS("sent_at") ", " API_TS(
                                     "read_at") " FROM deliveries WHERE campaign_id = $1"
                                                " AND ($2::text IS NULL OR status = $2) AND "
                                                "($3::bigint IS NULL OR id > $3)"
                                                " ORDER BY id LIMIT $4",
                   4, p);
    if (res == NULL) {
        api_internal_error(r);
        return;
    }
    int rows = PQntuples(res);
    char *next = rows > limit ? api_cursor_encode(PQgetvalue(res, limit - 1, D_ID)) : NULL;
    if (csv) {
        struct text_buf b = {0};
        for (int col = 0; col < DELIVERY_NCOLS; col++) {
            csv_cell(&b, delivery_columns[col], false);
            buf_append(&b, col + 1 < DELIVERY_NCOLS ? "," : "\r\n",
                       col + 1 < DELIVERY_NCOLS ? 1 : 2);
        }
        for (int i = 0; i < rows && i < limit; i++) {
            for (int col = 0; col < DELIVERY_NCOLS; col++) {
                bool text = col == D_RECIPIENT || col == D_ERROR || col == D_MESSAGE;
                csv_cell(&b, PQgetvalue(res, i, col), text);
                buf_append(&b, col + 1 < DELIVERY_NCOLS ? "," : "\r\n",
                           col + 1 < DELIVERY_NCOLS ? 1 : 2);
            }
        }
        r->resp->status = 200;
        r->resp->content_type = "text/csv; charset=utf-8";
        r->resp->body = b.data;
        r->resp->body_len = b.len;
        if (next != NULL) {
            http_add_header(r->resp, "X-Next-Cursor", next);
        }
        char disposition[96];
        snprintf(disposition, sizeof(disposition), "attachment; filename=\"deliveries-%.36s.csv\"",
                 id);
        http_add_header(r->resp, "Content-Disposition", disposition);
    } else {
        json_t *list = json_array();
        for (int i = 0; i < rows && i < limit; i++) {
            json_array_append_new(list, delivery_json(res, i));
        }
        api_json(r, 200,
                 json_pack("{s:o, s:o}", "deliveries", list, "next_cursor",
                           next ? json_string(next) : json_null()));
    }
    free(next);
    PQclear(res);
}

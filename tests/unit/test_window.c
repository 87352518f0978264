/* Unit tests of send windows (services/scheduler/window.c). Every expected instant is
 * written out as Unix seconds with its reading beside it (from the tz database through
 * Python's zoneinfo), never recomputed by the code under test. */
#include "check.h"

#include "window.h"

#include <jansson.h>

#define S 1000LL

static int parse(const char *text, struct send_window *w)
{
    char err[128] = "";
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    int rv = window_parse(obj, w, err, sizeof(err));
    json_decref(obj);
    return rv;
}

static bool place(const struct send_window *w, const char *tz, int64_t due_s, int64_t open_s,
                  int64_t close_s)
{
    struct schedule_zone z = {.tzid = tz, .fixed = false, .offset_s = 0};
    int64_t open, close;
    if (window_place(w, &z, due_s * S, &open, &close) != 0) {
        return false;
    }
    if (open != open_s * S || close != close_s * S) {
        fprintf(stderr, "  %s due %lld: got %lld..%lld, want %lld..%lld\n", tz, (long long)due_s,
                (long long)(open / S), (long long)(close / S), (long long)open_s,
                (long long)close_s);
        return false;
    }
    return true;
}

static void test_parse(void)
{
    struct send_window w;
    CHECK(parse("null", &w) == 0 && !w.present);
    CHECK(window_parse(NULL, &w, NULL, 0) == 0 && !w.present);
    CHECK(parse("{\"start\":\"09:00\",\"end\":\"18:00\"}", &w) == 0 && w.present &&
          w.start_minute == 540 && w.end_minute == 1080 && w.days == 0x7f);
    CHECK(parse("{\"start\":\"09:00\",\"end\":\"18:00\",\"days\":[\"mon\",\"fri\"]}", &w) == 0 &&
          w.days == ((1u << 1) | (1u << 5)));
    CHECK(parse("{\"start\":\"25:00\",\"end\":\"18:00\"}", &w) == -1);
    CHECK(parse("{\"start\":\"09:00\"}", &w) == -1);
    CHECK(parse("{\"start\":\"09:00\",\"end\":\"18:00\",\"days\":[\"funday\"]}", &w) == -1);
    CHECK(parse("{\"start\":\"09:00\",\"end\":\"18:00\",\"days\":[]}", &w) == -1);
    CHECK(parse("[]", &w) == -1);
}

static void test_place(void)
{
    struct send_window office;
    CHECK(parse("{\"start\":\"09:00\",\"end\":\"18:00\","
                "\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]}",
                &office) == 0);
    /* Thursday 2026-12-10, Berlin (+01:00). 09:00 local is inside: 08:00Z..17:00Z. */
    CHECK(place(&office, "Europe/Berlin", 1796889600, 1796889600, 1796922000));
    /* 07:00 local waits for 09:00 the same day. */
    CHECK(place(&office, "Europe/Berlin", 1796882400, 1796889600, 1796922000));
    /* Friday 19:00 local waits for Monday 2026-12-14 09:00 (08:00Z), closing 17:00Z. */
    CHECK(place(&office, "Europe/Berlin", 1797012000, 1797235200, 1797267600));

    /* Over midnight, every day, New York (-05:00). 2026-12-10 07:00 local: the next one
     * opens 22:00 that day (12-11 03:00Z) and closes 06:00 the next (11:00Z). */
    struct send_window night;
    CHECK(parse("{\"start\":\"22:00\",\"end\":\"06:00\"}", &night) == 0);
    CHECK(place(&night, "America/New_York", 1796904000, 1796958000, 1796986800));
    /* 2026-12-09 23:00 local is inside the window that opened at 22:00 on the 9th. */
    CHECK(place(&night, "America/New_York", 1796875200, 1796871600, 1796900400));

    /* Across the spring-forward: 09:00-10:00 daily in New York. Due at Saturday
     * 2026-03-07 10:00 EST (15:00Z), the closing instant itself: the next window is
     * Sunday 09:00 EDT, 13:00Z (not 14:00Z), to 14:00Z. */
    struct send_window hour;
    CHECK(parse("{\"start\":\"09:00\",\"end\":\"10:00\"}", &hour) == 0);
    CHECK(place(&hour, "America/New_York", 1772895600, 1772974800, 1772978400));

    /* A fixed offset (Messenger, -03:00): 08:00 local waits for 09:00, 12:00Z. */
    struct schedule_zone fixed = {.tzid = NULL, .fixed = true, .offset_s = -3 * 3600};
    int64_t open, close;
    CHECK(window_place(&office, &fixed, 1796900400 * S, &open, &close) == 0 &&
          open == 1796904000 * S && close == (1796904000 + 9 * 3600) * S);
    struct schedule_zone unknown = {.tzid = "Nowhere/Atlantis", .fixed = false, .offset_s = 0};
    CHECK(window_place(&office, &unknown, 1796900400 * S, &open, &close) == -1);
}

static void test_next_after(void)
{
    struct send_window office;
    CHECK(parse("{\"start\":\"09:00\",\"end\":\"18:00\","
                "\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]}",
                &office) == 0);
    int64_t open, close;
    /* Berlin's window closed Friday 2026-12-11 18:00 (17:00Z): Monday 08:00Z..17:00Z. */
    CHECK(window_next_after(&office, 1797008400 * S, 1797008400 * S, &open, &close) == 0 &&
          open == 1797235200 * S && close == 1797267600 * S);
    /* Kathmandu (+05:45) closed Thursday 18:00 (12:15Z): Friday 09:00 (03:15Z). */
    CHECK(window_next_after(&office, 1796904900 * S, 1796904900 * S, &open, &close) == 0 &&
          open == 1796958900 * S && close == 1796991300 * S);
    /* Honolulu (-10:00) closed Thursday 18:00 (Friday 04:00Z): Friday 09:00 (19:00Z). */
    CHECK(window_next_after(&office, 1796961600 * S, 1796961600 * S, &open, &close) == 0 &&
          open == 1797015600 * S && close == 1797048000 * S);
    /* Paused over the weekend: looked at on Saturday, Monday's window. */
    CHECK(window_next_after(&office, 1797008400 * S, 1797100000 * S, &open, &close) == 0 &&
          open == 1797235200 * S);
}

int main(void)
{
    test_parse();
    test_place();
    test_next_after();
    CHECK_DONE();
}

/* check.h: the minimal assertion helpers of the unit tests. A failed CHECK prints
 * the file, line and expression, and the test exits non-zero at the end. */
#ifndef BCRM_TEST_CHECK_H
#define BCRM_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *ca_ = (a), *cb_ = (b);                                                         \
        if (ca_ == NULL || cb_ == NULL || strcmp(ca_, cb_) != 0) {                                 \
            fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__,     \
                    ca_ ? ca_ : "(null)", cb_ ? cb_ : "(null)");                                   \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_DONE()                                                                               \
    do {                                                                                           \
        if (check_failures) {                                                                      \
            fprintf(stderr, "%d check(s) failed\n", check_failures);                               \
            return 1;                                                                              \
        }                                                                                          \
        return 0;                                                                                  \
    } while (0)

#endif

/* harden.c: see harden.h. */
#include "bcrm/harden.h"

#include "bcrm/log.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int process_harden(void)
{
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0) {
        log_fatal("cannot disable core dumps", "{s:s}", "error", strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        log_fatal("cannot mark the process non-dumpable", "{s:s}", "error", strerror(errno));
        return -1;
    }
    return 0;
}

/* noinline: its frame must lie below the caller's, where the dead stack is. */
__attribute__((noinline)) void stack_scrub(void)
{
    unsigned char dead[STACK_SCRUB_BYTES];
    sodium_memzero(dead, sizeof(dead));
}

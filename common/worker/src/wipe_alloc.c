/* wipe_alloc.c: libcurl's and jansson's memory, wiped when it is freed.
 *
 * A request carries its bot's token: in the Authorization header (Slack) or in the
 * URL's query string (Messenger's access_token). libcurl copies both: the URL
 * into the handle's settings and parsed parts, every header into the buffer the
 * request is assembled in. We wipe our own copies, but libcurl frees its copies
 * with a plain free(), and a freed heap block keeps its bytes until it is reused,
 * so a token would stay readable in the process long after its cache entry was
 * wiped. libcurl lets a program supply its allocator (curl_global_init_mem): this
 * one zeroes every block before it goes back to the heap, so what libcurl frees
 * is gone, and what it still holds is freed with the easy handle that used it.
 *
 * jansson gets the same free (json_set_alloc_funcs): the answers it parses hold
 * people's names and emails (users.info, users.list pages), and its strings
 * would otherwise outlive the profile cache's expiry in freed blocks.
 */
#include "worker_internal.h"

#include <jansson.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void wipe_free(void *ptr)
{
    if (ptr != NULL) {
        sodium_memzero(ptr, malloc_usable_size(ptr));
        free(ptr);
    }
}

/* A block that grows moves: the old one is wiped before it is freed. */
static void *wipe_realloc(void *ptr, size_t size)
{
    if (ptr == NULL) {
        return malloc(size);
    }
    size_t old = malloc_usable_size(ptr);
    if (size <= old && size > 0) {
        return ptr;
    }
    void *fresh = malloc(size > 0 ? size : 1);
    if (fresh == NULL) {
        return NULL;
    }
    memcpy(fresh, ptr, old < size ? old : size);
    wipe_free(ptr);
    return fresh;
}

static char *wipe_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

int worker_wipe_alloc_init(void)
{
    json_set_alloc_funcs(malloc, wipe_free);
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wipe_free, wipe_realloc, wipe_strdup,
                                calloc) == CURLE_OK
               ? 0
               : -1;
}

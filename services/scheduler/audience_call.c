/* audience_call.c: an asynchronous platform query (see audience_call.h). */
#include "audience_call.h"

#include "bcrm/log.h"

#include <errno.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum call_phase { CALL_IDLE, CALL_SENDING, CALL_RECEIVING, CALL_DONE };

struct audience_call {
    nng_aio *aio;
    nng_ctx ctx;
    int wake_fd;
    /* Written by NNG's callback thread, read by the loop once phase is CALL_DONE. */
    _Atomic int phase;
    int rv;
    nng_msg *reply;
    char tag[64];
};

static void call_done(struct audience_call *c, int rv, nng_msg *reply)
{
    c->rv = rv;
    c->reply = reply;
    atomic_store(&c->phase, CALL_DONE);
    uint64_t one = 1;
    ssize_t n = write(c->wake_fd, &one, sizeof(one));
    (void)n; /* an eventfd counter cannot overflow from one call at a time */
}

/* NNG's callback: after the send, wait for the reply; after the reply, hand over. */
static void on_aio(void *arg)
{
    struct audience_call *c = arg;
    int rv = nng_aio_result(c->aio);
    if (atomic_load(&c->phase) == CALL_SENDING) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            call_done(c, rv, NULL);
            return;
        }
        atomic_store(&c->phase, CALL_RECEIVING);
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    call_done(c, rv, rv == 0 ? nng_aio_get_msg(c->aio) : NULL);
}

struct audience_call *audience_call_new(void)
{
    struct audience_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("audience call not set up", "{s:s}", "error", "out of memory");
        return NULL;
    }
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rv = c->wake_fd < 0 ? NNG_ENOMEM : nng_aio_alloc(&c->aio, on_aio, c);
    if (rv != 0) {
        log_error("audience call not set up", "{s:s}", "error",
                  c->wake_fd < 0 ? strerror(errno) : nng_strerror(rv));
        if (c->wake_fd >= 0) {
            close(c->wake_fd);
        }
        free(c);
        return NULL;
    }
    atomic_init(&c->phase, CALL_IDLE);
    return c;
}

void audience_call_free(struct audience_call *c)
{
    if (c == NULL) {
        return;
    }
    nng_aio_stop(c->aio); /* waits for a callback in progress */
    if (c->reply != NULL) {
        nng_msg_free(c->reply);
    }
    int phase = atomic_load(&c->phase);
    if (phase != CALL_IDLE) {
        nng_ctx_close(c->ctx);
    }
    nng_aio_free(c->aio);
    close(c->wake_fd);
    free(c);
}

int audience_call_fd(const struct audience_call *c)
{
    return c->wake_fd;
}

bool audience_call_busy(const struct audience_call *c)
{
    return atomic_load(&c->phase) != CALL_IDLE;
}

int audience_call_start(struct audience_call *c, nng_socket sock,
                        const Bcrm__V1__PlatformQuery *query, int timeout_ms, const char *tag)
{
    if (audience_call_busy(c)) {
        return NNG_EBUSY;
    }
    int rv;
    nng_msg *msg = NULL;
    size_t len = protobuf_c_message_get_packed_size(&query->base);
    if ((rv = nng_msg_alloc(&msg, len)) != 0) {
        return rv;
    }
    protobuf_c_message_pack(&query->base, nng_msg_body(msg));
    if ((rv = nng_ctx_open(&c->ctx, sock)) != 0) {
        nng_msg_free(msg);
        return rv;
    }
    /* As bus_call: resend a few times within the deadline, so a replica that died
     * mid-call is replaced by another. */
    nng_ctx_set_ms(c->ctx, NNG_OPT_REQ_RESENDTIME, timeout_ms > 3000 ? timeout_ms / 3 : 1000);
    snprintf(c->tag, sizeof(c->tag), "%s", tag);
    c->rv = 0;
    c->reply = NULL;
    /* One deadline for the send and the reply together; REQ resends on its own. */
    nng_aio_set_timeout(c->aio, timeout_ms);
    nng_aio_set_msg(c->aio, msg);
    atomic_store(&c->phase, CALL_SENDING);
    nng_ctx_send(c->ctx, c->aio);
    return 0;
}

bool audience_call_take(struct audience_call *c, int *rv, Bcrm__V1__PlatformReply **reply,
                        char tag[64])
{
    uint64_t count;
    ssize_t n = read(c->wake_fd, &count, sizeof(count)); /* clears readiness */
    (void)n;
    if (atomic_load(&c->phase) != CALL_DONE) {
        return false;
    }
    *reply = NULL;
    *rv = c->rv;
    if (c->rv == 0 && c->reply != NULL) {
        *reply = (Bcrm__V1__PlatformReply *)protobuf_c_message_unpack(
            &bcrm__v1__platform_reply__descriptor, NULL, nng_msg_len(c->reply),
            nng_msg_body(c->reply));
        if (*reply == NULL) {
            *rv = NNG_EPROTO;
        }
    }
    if (c->reply != NULL) {
        nng_msg_free(c->reply);
        c->reply = NULL;
    }
    memcpy(tag, c->tag, 64);
    nng_ctx_close(c->ctx);
    atomic_store(&c->phase, CALL_IDLE);
    return true;
}

/* bus.c: NNG sockets carrying protobuf-c messages. */
#include "bcrm/bus.h"

#include "bcrm/config.h"

#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int bus_open(nng_socket *sock, enum bus_kind kind)
{
    int rv;
    switch (kind) {
    case BUS_PUSH:
        rv = nng_push0_open(sock);
        break;
    case BUS_PULL:
        rv = nng_pull0_open(sock);
        break;
    case BUS_REQ:
        rv = nng_req0_open(sock);
        break;
    case BUS_REP:
        rv = nng_rep0_open(sock);
        break;
    default:
        return NNG_EINVAL;
    }
    if (rv != 0) {
        return rv;
    }
    size_t maxsz = (size_t)config_int("BCRM_BUS_MAX_MSG", 4 << 20, 1024, 1 << 30);
    if ((rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, maxsz)) != 0 ||
        (rv = nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 50)) != 0 ||
        (rv = nng_socket_set_ms(*sock, NNG_OPT_RECONNMAXT, 1000)) != 0) {
        nng_close(*sock);
        return rv;
    }
    return 0;
}

int bus_listen(nng_socket *sock, enum bus_kind kind, const char *url)
{
    int rv;
    if ((rv = bus_open(sock, kind)) != 0) {
        return rv;
    }
    if ((rv = nng_listen(*sock, url, NULL, 0)) != 0) {
        nng_close(*sock);
        return rv;
    }
    return 0;
}

int bus_dial_more(nng_socket sock, const char *urls)
{
    /* NNG URLs hold no commas, so a comma separates them. */
    char url[1024];
    const char *p = urls;
    int dialed = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++, len--;
        }
        size_t end = len;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t')) {
            end--;
        }
        if (end >= sizeof(url)) {
            return NNG_EINVAL;
        }
        if (end > 0) {
            memcpy(url, p, end);
            url[end] = '\0';
            int rv = nng_dial(sock, url, NULL, NNG_FLAG_NONBLOCK);
            if (rv != 0) {
                return rv;
            }
            dialed++;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return dialed > 0 ? 0 : NNG_EADDRINVAL;
}

int bus_dial(nng_socket *sock, enum bus_kind kind, const char *url)
{
    int rv;
    if ((rv = bus_open(sock, kind)) != 0) {
        return rv;
    }
    if ((rv = bus_dial_more(*sock, url)) != 0) {
        nng_close(*sock);
        return rv;
    }
    return 0;
}

static int bus_pack(const ProtobufCMessage *msg, nng_msg **out)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    int rv = nng_msg_alloc(out, len);
    if (rv != 0) {
        return rv;
    }
    protobuf_c_message_pack(msg, nng_msg_body(*out));
    return 0;
}

int bus_send(nng_socket sock, const ProtobufCMessage *msg, int flags)
{
    nng_msg *m;
    int rv = bus_pack(msg, &m);
    if (rv != 0) {
        return rv;
    }
    if ((rv = nng_sendmsg(sock, m, flags)) != 0) {
        nng_msg_free(m);
    }
    return rv;
}

static int bus_unpack(nng_msg *m, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    *out = protobuf_c_message_unpack(desc, NULL, nng_msg_len(m), nng_msg_body(m));
    nng_msg_free(m);
    return *out != NULL ? 0 : NNG_EPROTO;
}

int bus_recv(nng_socket sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
             int flags)
{
    nng_msg *m;
    int rv = nng_recvmsg(sock, &m, flags);
    if (rv != 0) {
        return rv;
    }
    return bus_unpack(m, desc, out);
}

int bus_call(nng_socket req, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply, int timeout_ms)
{
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *m;
    int rv;
    *reply = NULL;
    if ((rv = nng_ctx_open(&ctx, req)) != 0) {
        return rv;
    }
    /* Resend at most a few times within the deadline: a lost request or a replica
     * that died mid-call is retried on another peer. */
    nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, timeout_ms > 3000 ? timeout_ms / 3 : 1000);
    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        goto out;
    }
    nng_aio_set_timeout(aio, timeout_ms);
    if ((rv = bus_pack(request, &m)) != 0) {
        goto out;
    }
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
        goto out;
    }
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        goto out;
    }
    rv = bus_unpack(nng_aio_get_msg(aio), desc, reply);
out:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return rv;
}

int bus_recv_fd(nng_socket sock, int *fd)
{
    return nng_socket_get_int(sock, NNG_OPT_RECVFD, fd);
}

void bus_new_id(char out[33])
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, 33, raw, sizeof(raw));
}

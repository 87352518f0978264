/* bus.h: protobuf messages over NNG sockets.
 *
 * Conventions (design.md): long-lived central services listen, scalable workers
 * dial; every socket has a receive size limit (BCRM_BUS_MAX_MSG, default 4 MiB);
 * the bus is not durable, so a message names rows and handlers are idempotent.
 * Functions return 0 or an NNG error number (nng_strerror() names it).
 */
#ifndef BCRM_BUS_H
#define BCRM_BUS_H

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bus_kind { BUS_PUSH, BUS_PULL, BUS_REQ, BUS_REP };

/* Opens a socket of the given kind with the size limit and reconnect timers set,
 * then listens on url (bus_listen) or dials it in the background (bus_dial: the
 * peer may start later; NNG reconnects on its own). */
int bus_listen(nng_socket *sock, enum bus_kind kind, const char *url);
/* url may be a comma-separated list: the socket dials every one of them. That is how
 * a worker reaches both schedulers of a leader/standby pair: the standby's sockets are
 * quiet until it leads, and then it has its senders at once (docs/architecture.md). */
int bus_dial(nng_socket *sock, enum bus_kind kind, const char *url);
/* Dials every URL of a comma-separated list on an open socket, in the background. 0,
 * or the first NNG error (NNG_EADDRINVAL for a list with no URL). */
int bus_dial_more(nng_socket sock, const char *urls);

/* Only opens the socket, with the same limits and timers, for a caller that must set
 * something up (a pipe notification) before it listens or dials itself. */
int bus_open(nng_socket *sock, enum bus_kind kind);

/* Packs msg and sends it. flags: 0 or NNG_FLAG_NONBLOCK. */
int bus_send(nng_socket sock, const ProtobufCMessage *msg, int flags);
/* Receives one message and unpacks it as desc. *out is freed with
 * protobuf_c_message_free_unpacked(*out, NULL). A message that does not unpack
 * is dropped and reported as NNG_EPROTO. */
int bus_recv(nng_socket sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
             int flags);
/* One request/reply exchange on its own context of a REQ socket, so many threads
 * may share the socket. The request is resent by NNG if no reply comes within
 * resend_ms, so handlers must be idempotent; gives up after timeout_ms. */
int bus_call(nng_socket req, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply, int timeout_ms);
/* The fd that polls readable when a message can be received (NNG_OPT_RECVFD). */
int bus_recv_fd(nng_socket sock, int *fd);

/* A random 128-bit id as 32 hex characters plus NUL: request and lease ids. */
void bus_new_id(char out[33]);

#endif

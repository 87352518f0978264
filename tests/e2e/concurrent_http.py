"""Many HTTP/1.1 requests in flight at once from one thread, for the simulators'
latency tests: every request gets its own connection, all are sent before any
answer is read, and one selector loop collects the answers.

    answers = many_at_once(port, [(method, path, headers, body), ...])

Each answer is (status, headers, body bytes, seconds from send to answer), or
None when the connection closed without a whole answer. Bodies must come with
Content-Length (both simulators answer that way).
"""
import resource
import selectors
import socket
import time


def raise_fd_limit():
    """Soft limit on open files up to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _complete(buf):
    """(status, headers, body) once buf holds a whole answer, else None."""
    head_end = buf.find(b'\r\n\r\n')
    if head_end < 0:
        return None
    lines = buf[:head_end].decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get('content-length', '0'))
    if len(buf) < head_end + 4 + length:
        return None
    return status, headers, buf[head_end + 4:head_end + 4 + length]


def many_at_once(port, requests, timeout=30.0):
    raise_fd_limit()
    sel = selectors.DefaultSelector()
    states = []
    for i, (method, path, headers, body) in enumerate(requests):
        sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        body = body or b''
        head = '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n' % (
            method, path, len(body))
        head += ''.join('%s: %s\r\n' % kv for kv in (headers or {}).items())
        sock.sendall(head.encode() + b'\r\n' + body)
        sock.setblocking(False)
        state = {'sock': sock, 'buf': b'', 'sent': time.monotonic(), 'answer': None}
        states.append(state)
        sel.register(sock, selectors.EVENT_READ, state)
    open_count = len(states)
    deadline = time.monotonic() + timeout
    while open_count and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            state = key.data
            try:
                data = state['sock'].recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionError:
                data = b''
            state['buf'] += data
            done = _complete(state['buf'])
            if done is not None or not data:
                if done is not None:
                    state['answer'] = done + (time.monotonic() - state['sent'],)
                sel.unregister(state['sock'])
                state['sock'].close()
                open_count -= 1
    for state in states:
        if state['answer'] is None and state['sock'].fileno() >= 0:
            sel.unregister(state['sock'])
            state['sock'].close()
    sel.close()
    return [s['answer'] for s in states]

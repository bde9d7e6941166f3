"""kvconf_badinput.py - bad input over raw sockets never hurts the server.

Each case sends what a broken or hostile client might send and compares
the first answer with stock memcached 1.6.18's: the kind of error line
(ERROR, CLIENT_ERROR, SERVER_ERROR; the text after it is free-form in
memcached's protocol.txt), an exact reply for valid requests, or a closed
connection. What a server does with the rest of such a connection is not
compared (memcached parses the leftover bytes as commands). After every
case the server must answer `version` on a new connection and still hold
the data stored before the first case, byte for byte and flag for flag.

The cases rely on memcached's defaults for the item size limit (-I 1m)
and key length (250 bytes).
"""

import random
import resource
import socket
import struct

import kvserver

IO_TIMEOUT = 30          # seconds; sanitized servers are slow
MiB = 1024 * 1024
ANY = None               # a case whose answer is not compared

SEED = {                 # key: (flags, value)
    b'seed_text': (0, b'stored before the first bad input'),
    b'seed_flags': (4294967295, b'all flag bits'),
    b'seed_binary': (7, bytes(range(256)) + b'\r\nEND\r\n'),
    b'seed_counter': (0, b'41'),
    b'seed_large': (1, random.Random(1).randbytes(200000)),
}


class Conn:
    """A raw client connection that reads replies line by line."""

    def __init__(self, port):
        self.sock = socket.create_connection((kvserver.HOST, port),
                                             timeout=IO_TIMEOUT)
        self.buf = b''

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        """Read more; False once the server closed (FIN or RST)."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b''
        self.buf += data
        return bool(data)

    def line(self):
        """The next reply line without \\r\\n, or None if closed first."""
        while b'\r\n' not in self.buf:
            if not self._fill():
                return None
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reset(self):
        """Close with an RST rather than a FIN, as a crashed client does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack('ii', 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


def outcome(line):
    """What a case compares: 'closed', an error line's kind, or the line."""
    if line is None:
        return 'closed'
    kind = line.split(b' ', 1)[0].decode(errors='replace')
    if kind in ('ERROR', 'CLIENT_ERROR', 'SERVER_ERROR'):
        return kind
    return line.decode(errors='replace')


def store(conn, key, flags, value):
    conn.send(b'set %s %d 0 %d\r\n%s\r\n' % (key, flags, len(value), value))
    reply = conn.line()
    if reply != b'STORED':
        raise kvserver.CheckFailed(f'set {key.decode()} answered {reply!r}')


def fetch(conn, keys):
    """get keys -> {key: (flags, value)}; raises if the reply is garbled."""
    conn.send(b'get ' + b' '.join(keys) + b'\r\n')
    found = {}
    while True:
        line = conn.line()
        if line == b'END':
            return found
        words = (line or b'').split(b' ')
        if len(words) != 4 or words[0] != b'VALUE':
            raise kvserver.CheckFailed(f'get answered {line!r}')
        data = conn.exactly(int(words[3]) + 2)
        if data is None or not data.endswith(b'\r\n'):
            raise kvserver.CheckFailed(f'get {words[1]!r}: value cut short')
        found[words[1]] = (int(words[2]), data[:-2])


# Actions: each takes a port and returns the first reply's outcome.

def ask(data):
    """Send data and read the first reply."""
    def action(port):
        conn = Conn(port)
        try:
            conn.send(data)
            return outcome(conn.line())
        finally:
            conn.close()
    return action


def ask_then_eof(data):
    """Send data, close our side, and see what comes back."""
    def action(port):
        conn = Conn(port)
        try:
            conn.send(data)
            conn.sock.shutdown(socket.SHUT_WR)
            return outcome(conn.line())
        finally:
            conn.close()
    return action


def vanish(data):
    """Send data and disappear without reading (RST)."""
    def action(port):
        conn = Conn(port)
        conn.send(data)
        conn.reset()
        return 'vanished'
    return action


def many_connections(port):
    """1000 clients at once: every tenth proves it is served, a third leave
    half a command behind, and they go with a FIN or an RST."""
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 100:
        if hard != resource.RLIM_INFINITY and hard < count + 100:
            raise kvserver.Skip(f'1000 connections need more than the '
                                f'{hard} open files allowed')
        resource.setrlimit(resource.RLIMIT_NOFILE, (count + 100, hard))
    conns = []
    try:
        for i in range(count):
            conn = Conn(port)
            conns.append(conn)
            if i % 10 == 0:
                conn.send(b'version\r\n')
            elif i % 3 == 1:
                conn.send(b'set dropped_%d 0 0 10\r\nhalf' % i)
        for conn in conns[::10]:
            if outcome(conn.line()) == 'closed':
                return 'a connection was closed while 1000 were open'
        return 'served'
    finally:
        for i, conn in enumerate(conns):
            conn.reset() if i % 2 else conn.close()


class Case:
    """A bad input, memcached's answer(s) to it (the first is memcached's;
    any other listed is an equally valid refusal), and the keys it must
    leave set (bytes value) or unset (None)."""

    def __init__(self, name, action, expect, after=None):
        self.name = name
        self.action = action
        self.expect = expect if expect is None or isinstance(expect, tuple) \
            else (expect,)
        self.after = after or {}


def garbage(size, seed, alphabet=None):
    rng = random.Random(seed)
    if alphabet:
        return bytes(rng.choice(alphabet) for _ in range(size))
    data = rng.randbytes(size)
    # memcached takes a first byte of 0x80 as the start of its binary
    # protocol, which atoll-kv does not speak; both see text garbage here.
    return (b'x' + data[1:]) if data[0] == 0x80 else data


def garbage_lines(count, seed):
    words = b'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '
    return b''.join(garbage(60, seed + i, words) + b'\r\n'
                    for i in range(count))


KEY250 = b'k' * 250
KEY251 = b'k' * 251
TOO_LARGE = MiB + 1

CASES = [
    Case('key_250_bytes_allowed', ask(b'set %s 0 0 1\r\nx\r\n' % KEY250),
         'STORED', after={KEY250: b'x'}),
    Case('key_251_bytes_set', ask(b'set %s 0 0 1\r\nx\r\n' % KEY251),
         'CLIENT_ERROR'),
    Case('key_251_bytes_get', ask(b'get %s seed_text\r\n' % KEY251),
         'CLIENT_ERROR'),
    Case('value_over_item_limit',
         ask(b'set too_large 0 0 %d\r\n%s\r\n' % (TOO_LARGE,
                                                  b'v' * TOO_LARGE)),
         'SERVER_ERROR', after={b'too_large': None}),
    Case('length_negative', ask(b'set bad_len 0 0 -1\r\nx\r\n'),
         'CLIENT_ERROR', after={b'bad_len': None}),
    Case('length_overflows_64_bits',
         ask(b'set bad_len 0 0 99999999999999999999\r\nx\r\n'),
         'CLIENT_ERROR', after={b'bad_len': None}),
    Case('length_2_pow_31', ask(b'set bad_len 0 0 2147483648\r\nx\r\n'),
         ('CLIENT_ERROR', 'SERVER_ERROR'), after={b'bad_len': None}),
    Case('length_2_pow_32', ask(b'set bad_len 0 0 4294967296\r\nx\r\n'),
         ('CLIENT_ERROR', 'SERVER_ERROR'), after={b'bad_len': None}),
    Case('length_junk', ask(b'set bad_len 0 0 1x\r\nx\r\n'),
         'CLIENT_ERROR', after={b'bad_len': None}),
    Case('length_missing', ask(b'set bad_len 0 0\r\n'), 'ERROR'),
    Case('flags_junk', ask(b'set bad_flags abc 0 1\r\nx\r\n'),
         'CLIENT_ERROR', after={b'bad_flags': None}),
    Case('flags_negative', ask(b'set bad_flags -1 0 1\r\nx\r\n'),
         'CLIENT_ERROR', after={b'bad_flags': None}),
    Case('exptime_junk', ask(b'set bad_exp 0 abc 1\r\nx\r\n'),
         'CLIENT_ERROR', after={b'bad_exp': None}),
    Case('touch_exptime_junk', ask(b'touch seed_text abc\r\n'),
         'CLIENT_ERROR'),
    Case('flush_all_delay_junk', ask(b'flush_all abc\r\n'), 'CLIENT_ERROR'),
    Case('delete_with_time', ask(b'delete seed_text 5\r\n'), 'CLIENT_ERROR'),
    Case('incr_delta_junk', ask(b'incr seed_counter abc\r\n'),
         'CLIENT_ERROR'),
    Case('incr_delta_overflows_64_bits',
         ask(b'incr seed_counter 18446744073709551616\r\n'), 'CLIENT_ERROR'),
    Case('cas_unique_missing', ask(b'cas bad_cas 0 0 1\r\nx\r\n'), 'ERROR',
         after={b'bad_cas': None}),
    Case('unknown_command', ask(b'bogus seed_text\r\n'), 'ERROR'),
    Case('empty_line', ask(b'\r\n'), 'ERROR'),
    Case('get_without_key', ask(b'get\r\n'), 'ERROR'),
    Case('control_bytes_line', ask(b'\x00\x01\x02\x7f\r\n'), 'ERROR'),
    Case('data_longer_than_announced',
         ask(b'set chunk 0 0 3\r\nabcdef\r\n'), 'CLIENT_ERROR',
         after={b'chunk': None}),
    Case('data_shorter_than_announced',
         ask(b'set chunk 0 0 5\r\nabc\r\nget seed_text\r\n'), 'CLIENT_ERROR',
         after={b'chunk': None}),
    Case('multiget_of_100_kib', ask(b'get ' + b' '.join(
        b'miss%d' % i for i in range(12000)) + b'\r\n'), 'END'),
    Case('line_of_64_kib_without_newline', ask(b'A' * 65536), 'closed'),
    Case('command_truncated_at_eof', ask_then_eof(b'set trunc 0 0 5'),
         'closed', after={b'trunc': None}),
    Case('get_truncated_at_eof', ask_then_eof(b'get seed_text'), 'closed'),
    Case('value_truncated_at_eof',
         ask_then_eof(b'set trunc 0 0 10\r\nabc'), 'closed',
         after={b'trunc': None}),
    Case('garbage_lines', ask(garbage_lines(200, 2)), 'ERROR'),
    Case('binary_garbage', ask(garbage(256 * 1024, 3)), ANY),
    Case('client_vanishes_mid_value',
         vanish(b'set vanished 0 0 100\r\n' + b'v' * 50), ANY,
         after={b'vanished': None}),
    Case('client_vanishes_mid_reply',
         vanish(b'get ' + b' '.join([b'seed_large'] * 64) + b'\r\n'), ANY),
    Case('1000_connections_dropped', many_connections, 'served',
         after={b'dropped_1': None}),
]


def brief(item):
    if item is None:
        return 'nothing'
    text = repr(item)
    return text if len(text) < 60 else text[:56] + '...'


def verify_server(port, expected):
    """The server answers version on a new connection and holds
    `expected` ({key: (flags, value) or None}) exactly."""
    conn = Conn(port)
    try:
        conn.send(b'version\r\n')
        reply = conn.line()
        if not reply or not reply.startswith(b'VERSION '):
            return f'version answered {reply!r}'
        got = fetch(conn, list(expected))
        for key, want in expected.items():
            if got.get(key) != want:
                return (f'{key.decode()[:40]} holds {brief(got.get(key))}, '
                        f'expected {brief(want)}')
        return None
    except (OSError, kvserver.CheckFailed) as e:
        return f'the check after the case failed: {e}'
    finally:
        conn.close()


def check(args, launcher):
    server = launcher.start(args.server[0], '-c', 2048)
    conn = Conn(server.port)
    for key, (flags, value) in SEED.items():
        store(conn, key, flags, value)
    conn.close()
    expected = dict(SEED)
    failed = 0
    for case in CASES:
        try:
            got = case.action(server.port)
        except OSError as e:
            got = f'{type(e).__name__}: {e}'
        after = {k: v and (0, v) for k, v in case.after.items()}
        problem = None
        if case.expect is not ANY and got not in case.expect:
            problem = f'answered {got}, memcached answers {case.expect[0]}'
        problem = problem or verify_server(server.port, {**expected, **after})
        # what a case stored stays for the next; what it must not have
        # stored is only its own concern, so one failure does not cascade
        expected.update({k: v for k, v in after.items() if v})
        if problem:
            failed += 1
            print(f'FAIL {case.name}: {problem}')
        else:
            print(f'ok   {case.name}: {got}')
    print(f'{len(CASES) - failed} of {len(CASES)} bad-input cases passed '
          f'against {server.describe()}')
    return failed == 0


if __name__ == '__main__':
    kvserver.run(check, __doc__.splitlines()[0])

"""kvconf_shards.py - cross-shard requests under concurrency, real server.

The server runs with more vcores (hence shards) than this machine has
cpus, so connection uthreads keep landing on vcores that do not own the
keys they touch and most requests are forwarded to another shard's owner.
Eight client threads, each with keys of its own and a few shared
counters, pipeline sets, multi-gets that span every shard, gets/cas
updates and incr on the shared counters. Every answer is checked: a value
from the wrong key, a lost update or a mixed-up multi-get reply fails.
Works against memcached too (its -t is threads), which proves the check.
"""

import socket
import threading

import kvserver

VCORES = 6            # above the cpu count on purpose
THREADS = 8
KEYS_PER_THREAD = 300
ROUNDS = 4
COUNTERS = 5
INCRS_PER_THREAD = 200
IO_TIMEOUT = 60.0


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection((kvserver.HOST, port),
                                             timeout=IO_TIMEOUT)
        self.buf = b''

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise kvserver.CheckFailed('the server closed a connection')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def data(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise kvserver.CheckFailed('the server closed a connection')
            self.buf += chunk
        value, self.buf = self.buf[:n], self.buf[n + 2:]
        return value

    def values(self):
        """Read VALUE lines up to END: {key: (flags, value, cas)}."""
        got = {}
        while True:
            words = self.line().split()
            if words == [b'END']:
                return got
            if words[0] != b'VALUE':
                raise kvserver.CheckFailed(f'unexpected line {words!r}')
            cas = int(words[4]) if len(words) > 4 else None
            got[words[1]] = (int(words[2]), self.data(int(words[3])), cas)


def value_of(tid, k, rnd):
    return b'%d:%d:%d:' % (tid, k, rnd) + b'v' * ((k * 7) % 300)


def client(port, tid, errors):
    try:
        c = Conn(port)
        keys = [b't%d_k%d' % (tid, k) for k in range(KEYS_PER_THREAD)]
        for rnd in range(ROUNDS):
            # Pipelined sets, then one multi-get over all of them.
            c.send(b''.join(b'set %s %d 0 %d\r\n%s\r\n'
                            % (key, tid, len(value_of(tid, k, rnd)),
                               value_of(tid, k, rnd))
                            for k, key in enumerate(keys)))
            for key in keys:
                if c.line() != b'STORED':
                    raise kvserver.CheckFailed(f'set {key!r} not stored')
            c.send(b'get ' + b' '.join(keys) + b'\r\n')
            got = c.values()
            for k, key in enumerate(keys):
                if got.get(key, (None, None))[:2] != (tid, value_of(tid, k,
                                                                     rnd)):
                    raise kvserver.CheckFailed(
                        f'round {rnd}: {key!r} read back {got.get(key)!r}')
        # Shared counters: every increment must count once.
        for i in range(INCRS_PER_THREAD):
            c.send(b'incr ctr%d 1\r\n' % (i % COUNTERS))
            reply = c.line()
            if not reply.isdigit():
                raise kvserver.CheckFailed(f'incr answered {reply!r}')
        # gets/cas on a shared key: retry until our cas wins.
        while True:
            c.send(b'gets shared\r\n')
            flags, value, cas = c.values()[b'shared']
            new = b'%d' % (int(value) + 1)
            c.send(b'cas shared 0 0 %d %d\r\n%s\r\n' % (len(new), cas, new))
            reply = c.line()
            if reply == b'STORED':
                break
            if reply != b'EXISTS':
                raise kvserver.CheckFailed(f'cas answered {reply!r}')
    except Exception as e:   # reported by the main thread
        errors.append(f'client {tid}: {e}')


def check(args, launcher):
    server = launcher.start(args.server[0], '-t', str(VCORES))
    c = Conn(server.port)
    c.send(b''.join(b'set ctr%d 0 0 1\r\n0\r\n' % i for i in range(COUNTERS))
           + b'set shared 0 0 1\r\n0\r\n')
    for _ in range(COUNTERS + 1):
        if c.line() != b'STORED':
            raise kvserver.CheckFailed('setting up the counters failed')
    errors = []
    threads = [threading.Thread(target=client, args=(server.port, t, errors))
               for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise kvserver.CheckFailed('; '.join(errors[:3]))
    c.send(b'get ' + b' '.join(b'ctr%d' % i for i in range(COUNTERS))
           + b' shared\r\n')
    got = c.values()
    total = sum(int(got[b'ctr%d' % i][1]) for i in range(COUNTERS))
    if total != THREADS * INCRS_PER_THREAD:
        raise kvserver.CheckFailed(f'counters sum to {total}, expected '
                                   f'{THREADS * INCRS_PER_THREAD}')
    if int(got[b'shared'][1]) != THREADS:
        raise kvserver.CheckFailed(f'cas counter is {got[b"shared"][1]!r}, '
                                   f'expected {THREADS}')
    c.send(b'stats\r\n')
    stats = {}
    while (words := c.line().split()) != [b'END']:
        stats[words[1]] = words[2]
    if b'shard_forwarded_calls' in stats:        # atoll-kv, not memcached
        local = int(stats[b'shard_local_calls'])
        forwarded = int(stats[b'shard_forwarded_calls'])
        if int(stats[b'shards']) != VCORES or not forwarded or not local:
            raise kvserver.CheckFailed(
                f'expected {VCORES} shards and both local and forwarded '
                f'calls, got {stats[b"shards"]!r} shards, {local} local, '
                f'{forwarded} forwarded: the test proved nothing')
        print(f'{local} shard calls ran in place, {forwarded} forwarded')
    print(f'shards: {THREADS} clients x {KEYS_PER_THREAD} keys x {ROUNDS} '
          f'rounds, {THREADS * INCRS_PER_THREAD} shared increments and '
          f'{THREADS} cas updates correct against {server.describe()}')
    return True


if __name__ == '__main__':
    kvserver.run(check, __doc__.splitlines()[0])

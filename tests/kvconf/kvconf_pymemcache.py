"""kvconf_pymemcache.py - a pymemcache suite, the same for every server.

The suite is a list of steps: a client call (Op) or a small scenario
(Scenario: fill far past -m, race threads, read stats deltas). Each step's
result, normalised, is one transcript line. What legitimately differs
between two correct servers - cas unique numbers, absolute stat values, the
version string - is normalised away, so servers that keep memcached's
semantics write identical transcripts. Every step also states memcached's
answer, and any other answer fails the test even when only one server
runs.

With one --server the suite runs against it; given twice, it runs against
both and also fails when their transcripts differ, printing the diff.
"""

import difflib
import hashlib
import threading
import time

import kvserver

try:
    from pymemcache.client.base import Client
except ImportError:
    Client = None

MiB = 1024 * 1024
U64_MAX = 2**64 - 1
CAS = '<cas>'                 # a cas unique, whatever its number
VERSION = '<version>'         # a version string, whatever it says
CLIENT_ERROR = 'raises MemcacheClientError'
SERVER_ERROR = 'raises MemcacheServerError'
IO_TIMEOUT = 30               # seconds; sanitized servers are slow


class FlagsSerde:
    """Values are bytes; (bytes, flags) carries client flags both ways, so
    a transcript shows the flags a server kept."""

    def serialize(self, key, value):
        return value if isinstance(value, tuple) else (value, 0)

    def deserialize(self, key, value, flags):
        return (value, flags) if flags else value


def connect(server):
    return Client((kvserver.HOST, server.port), serde=FlagsSerde(),
                  connect_timeout=IO_TIMEOUT, timeout=IO_TIMEOUT,
                  default_noreply=False)


def normalise(result):
    """A result as a transcript shows it: long values as length + digest,
    long key lists as their ends, dicts in key order."""
    if isinstance(result, list) and len(result) > 8:
        return result[:2] + [f'... {len(result)} keys'] + result[-1:]
    if isinstance(result, bytes) and len(result) > 40:
        digest = hashlib.sha1(result).hexdigest()[:12]
        return f'<{len(result)} bytes sha1:{digest}>'
    if isinstance(result, tuple):
        return tuple(normalise(r) for r in result)
    if isinstance(result, dict):
        return {k: normalise(result[k]) for k in sorted(result)}
    return result


class Run:
    """One server's pass through the suite: its client and what the steps
    carry forward (the last cas unique seen per key)."""

    def __init__(self, launcher, spec, server):
        self.launcher = launcher
        self.spec = spec
        self.server = server
        self.client = connect(server)
        self.cas = {}


class LastCas:
    """Stands for the cas unique the last gets/gets_many returned for key."""

    def __init__(self, key):
        self.key = key

    def resolve(self, run):
        return run.cas[self.key]

    def __repr__(self):
        return f'cas({self.key})'


class Now:
    """Stands for an absolute exptime: the unix time at the call + delta."""

    def __init__(self, delta):
        self.delta = delta

    def resolve(self, run):
        return int(time.time()) + self.delta

    def __repr__(self):
        return f'now{self.delta:+d}'


def resolve(arg, run):
    return arg.resolve(run) if isinstance(arg, (LastCas, Now)) else arg


class Op:
    """client.<method>(*args, **kwargs); memcached answers `expect`.
    `number` marks a counter read: memcached may pad a shrunken number
    with spaces (protocol.txt, incr/decr), so those are stripped."""

    def __init__(self, method, *args, expect, number=False, **kwargs):
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.expect = expect
        self.number = number

    def describe(self):
        words = [self.method] + [repr(normalise(a)) for a in self.args]
        words += [f'{k}={normalise(v)!r}' for k, v in self.kwargs.items()]
        return ' '.join(words)

    def perform(self, run):
        args = [resolve(a, run) for a in self.args]
        kwargs = {k: resolve(v, run) for k, v in self.kwargs.items()}
        result = getattr(run.client, self.method)(*args, **kwargs)
        if self.method == 'gets' and result[1] is not None:
            run.cas[args[0]] = result[1]
            result = (result[0], CAS)
        elif self.method == 'gets_many':
            run.cas.update({k: cas for k, (_, cas) in result.items()})
            result = {k: (value, CAS) for k, (value, _) in result.items()}
        elif self.method == 'version':
            result = VERSION if result else result
        elif self.number and isinstance(result, bytes):
            result = result.rstrip(b' ')
        return result


class Scenario:
    """function(run) -> a summary whose value memcached makes `expect`."""

    def __init__(self, function, expect):
        self.function = function
        self.expect = expect

    def describe(self):
        return self.function.__name__

    def perform(self, run):
        return self.function(run)


def pause_for_expiry(run):
    # Long enough for exptime 1 to pass on memcached's one-second clock,
    # short enough that an exptime of 10 has not.
    time.sleep(2.1)


def stats_deltas(run):
    """The stats everybody reads exist, and hits and misses are counted."""
    wanted = ('pid', 'uptime', 'time', 'version', 'curr_connections',
              'curr_items', 'total_items', 'bytes', 'limit_maxbytes',
              'cmd_get', 'cmd_set', 'get_hits', 'get_misses', 'evictions')
    client = run.client
    before = client.stats()
    client.set('stats_key', b'v')
    client.get_many(['stats_key', 'stats_missing'])
    client.get('stats_missing')
    after = client.stats()
    missing = [w for w in wanted if w.encode() not in after]
    deltas = {w: int(after[w.encode()]) - int(before[w.encode()])
              for w in ('cmd_get', 'cmd_set', 'get_hits', 'get_misses')
              if w.encode() in after and w.encode() in before}
    return {'missing stats': missing, 'deltas': deltas}


def eviction_under_small_memory(run):
    """Store 7x -m in 10 kB values on a fresh server: it stays up, keeps
    the latest keys, counts evictions and holds no more than -m."""
    megabytes, value, count = 8, b'e' * 10000, 6000
    server = run.launcher.start(run.spec, '-m', megabytes)
    client = connect(server)
    keys = [f'evict{i:05d}' for i in range(count)]
    for i in range(0, count, 100):
        client.set_many({k: value for k in keys[i:i + 100]}, noreply=True)
    recent = client.get_many(keys[-100:])
    held = 0
    for i in range(0, count, 100):
        held += len(client.get_many(keys[i:i + 100]))
    stats = client.stats()
    summary = {
        'answers version': bool(client.version()),
        'latest 100 intact': recent == {k: value for k in keys[-100:]},
        'evictions counted': int(stats.get(b'evictions', 0)) > 0,
        'holds at most -m': held * len(value) <= megabytes * MiB,
        'limit_maxbytes': int(stats.get(b'limit_maxbytes', -1)),
    }
    client.close()
    server.stop()
    return summary


def cas_increment(client, key):
    """Add one to key with a gets/cas loop; a server whose cas never
    succeeds must fail the test, not hang it."""
    for _ in range(1000):
        value, cas = client.gets(key)
        if client.cas(key, str(int(value) + 1).encode(), cas):
            return
    raise RuntimeError(f'cas on {key} failed 1000 times in a row')


def concurrent_clients(run):
    """Four clients at once: each writes its keys, then reads another's,
    and all bump one counter with incr and one with a gets/cas loop."""
    threads, keys_each, incrs_each, cas_each = 4, 250, 100, 25
    run.client.set('race_incr', b'0')
    run.client.set('race_cas', b'0')
    written = threading.Barrier(threads)
    faults = []

    def worker(me):
        client = connect(run.server)
        try:
            mine = {f'race{me}_{i}': f'{me}:{i}'.encode() * (1 + i % 7)
                    for i in range(keys_each)}
            # half the writers use noreply, so both paths race
            for key, value in mine.items():
                client.set(key, value, noreply=me % 2 == 1)
            written.wait(IO_TIMEOUT)
            other = (me + 1) % threads
            theirs = {f'race{other}_{i}': f'{other}:{i}'.encode() * (1 + i % 7)
                      for i in range(keys_each)}
            got = client.get_many(list(theirs))
            if got != theirs:
                faults.append(f'client {me} read {len(got)} of client '
                              f"{other}'s {keys_each} keys correctly")
            for _ in range(incrs_each):
                client.incr('race_incr', 1)
            for _ in range(cas_each):
                cas_increment(client, 'race_cas')
        except Exception as e:      # reported, and the count below fails
            faults.append(f'client {me}: {type(e).__name__}: {e}')
            written.abort()
        finally:
            client.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for f in faults:
        print(f'  {run.spec}: {f}')
    return {'faults': len(faults),
            'incr counter': int(run.client.get('race_incr').rstrip()),
            'cas counter': int(run.client.get('race_cas'))}


BINARY = bytes(range(256))
LARGE_OK = b'L' * (MiB - 1024)       # fits memcached's 1 MiB item limit
LARGE_BAD = b'L' * (MiB + 1)         # does not, on memcached or atoll-kv

SUITE = [
    # basics
    Op('flush_all', expect=True),
    Op('get', 'k', expect=None),
    Op('set', 'k', b'v1', expect=True),
    Op('get', 'k', expect=b'v1'),
    Op('set', 'k', b'v2', expect=True),
    Op('get', 'k', expect=b'v2'),
    Op('set', 'empty', b'', expect=True),
    Op('get', 'empty', expect=b''),
    Op('set', 'flags', (b'f', 0xffffffff), expect=True),
    Op('get', 'flags', expect=(b'f', 0xffffffff)),
    Op('get_many', ['k', 'nokey', 'empty', 'flags'],
       expect={'k': b'v2', 'empty': b'', 'flags': (b'f', 0xffffffff)}),
    Op('get_many', [f'many{i}' for i in range(100)], expect={}),
    Op('version', expect=VERSION),
    # cas
    Op('gets', 'k', expect=(b'v2', CAS)),
    Op('cas', 'k', b'v3', LastCas('k'), expect=True),
    Op('cas', 'k', b'v4', LastCas('k'), expect=False),
    Op('get', 'k', expect=b'v3'),
    Op('cas', 'nokey', b'x', 1, expect=None),
    Op('gets_many', ['k', 'nokey'], expect={'k': (b'v3', CAS)}),
    Op('append', 'k', b'+', expect=True),
    Op('cas', 'k', b'v5', LastCas('k'), expect=False),
    Op('gets', 'nokey', expect=(None, None)),
    # add, replace, append, prepend, delete, touch
    Op('add', 'k', b'a', expect=False),
    Op('add', 'added', b'a', expect=True),
    Op('get', 'added', expect=b'a'),
    Op('replace', 'k', b'r', expect=True),
    Op('replace', 'nokey', b'r', expect=False),
    Op('get', 'nokey', expect=None),
    Op('append', 'k', b'+', expect=True),
    Op('prepend', 'k', b'-', expect=True),
    Op('get', 'k', expect=b'-r+'),
    Op('append', 'nokey', b'x', expect=False),
    Op('prepend', 'nokey', b'x', expect=False),
    Op('set', 'appflags', (b'a', 7), expect=True),
    Op('append', 'appflags', b'b', expect=True),
    Op('get', 'appflags', expect=(b'ab', 7)),
    Op('delete', 'k', expect=True),
    Op('delete', 'k', expect=False),
    Op('get', 'k', expect=None),
    Op('touch', 'added', 100, expect=True),
    Op('touch', 'nokey', 100, expect=False),
    Op('flush_all', expect=True),
    Op('get_many', ['added', 'empty', 'flags'], expect={}),
    Op('add', 'added', b'again', expect=True),
    Op('quit', expect=None),
    Op('get', 'added', expect=b'again'),
    # noreply: pymemcache returns True or None without reading; the get
    # after each shows what the server did
    Op('set', 'nr', b'1', noreply=True, expect=True),
    Op('get', 'nr', expect=b'1'),
    Op('add', 'nr', b'2', noreply=True, expect=True),
    Op('get', 'nr', expect=b'1'),
    Op('replace', 'nr', b'3', noreply=True, expect=True),
    Op('append', 'nr', b'4', noreply=True, expect=True),
    Op('prepend', 'nr', b'2', noreply=True, expect=True),
    Op('get', 'nr', expect=b'234'),
    Op('incr', 'nr', 6, noreply=True, expect=None),
    Op('get', 'nr', expect=b'240', number=True),
    Op('decr', 'nr', 40, noreply=True, expect=None),
    Op('get', 'nr', expect=b'200', number=True),
    Op('gets', 'nr', expect=(b'200', CAS)),
    Op('cas', 'nr', b'cas', LastCas('nr'), noreply=True, expect=True),
    Op('get', 'nr', expect=b'cas'),
    Op('touch', 'nr', -1, noreply=True, expect=True),
    Op('get', 'nr', expect=None),
    Op('set', 'nr', b'1', noreply=True, expect=True),
    Op('delete', 'nr', noreply=True, expect=True),
    Op('get', 'nr', expect=None),
    Op('set', 'nr', b'1', noreply=True, expect=True),
    Op('flush_all', noreply=True, expect=True),
    Op('get', 'nr', expect=None),
    # binary-safe values
    Op('set', 'bin', BINARY, expect=True),
    Op('get', 'bin', expect=BINARY),
    Op('append', 'bin', b'\r\n\0', expect=True),
    Op('get', 'bin', expect=BINARY + b'\r\n\0'),
    Op('set', 'crlf', b'\r\n', expect=True),
    Op('set', 'inner', b'a\r\nb\rc\nd', expect=True),
    Op('set', 'fake', b'VALUE fake 0 1\r\nx\r\nEND\r\n', expect=True),
    Op('set', 'nul', b'\0', expect=True),
    Op('get_many', ['crlf', 'inner', 'fake', 'nul'],
       expect={'crlf': b'\r\n', 'inner': b'a\r\nb\rc\nd',
               'fake': b'VALUE fake 0 1\r\nx\r\nEND\r\n', 'nul': b'\0'}),
    # large values: a failed set drops the old value (memcached will not
    # serve stale data after a write it refused); a failed append keeps it
    Op('set', 'large', LARGE_OK, expect=True),
    Op('get', 'large', expect=LARGE_OK),
    Op('set', 'large', LARGE_BAD, expect=SERVER_ERROR),
    Op('get', 'large', expect=None),
    Op('set', 'grow', b'g', expect=True),
    Op('append', 'grow', LARGE_BAD, expect=SERVER_ERROR),
    Op('get', 'grow', expect=b'g'),
    Op('version', expect=VERSION),
    # incr and decr
    Op('set', 'n', b'0', expect=True),
    Op('incr', 'n', 1, expect=1),
    Op('incr', 'n', 41, expect=42),
    Op('decr', 'n', 2, expect=40),
    Op('set', 'n', str(U64_MAX).encode(), expect=True),
    Op('incr', 'n', 0, expect=U64_MAX),
    Op('incr', 'n', 1, expect=0),
    Op('get', 'n', expect=b'0', number=True),
    Op('set', 'n', str(U64_MAX - 1).encode(), expect=True),
    Op('incr', 'n', 3, expect=1),
    Op('incr', 'n', U64_MAX, expect=0),
    Op('set', 'n', b'5', expect=True),
    Op('decr', 'n', 10, expect=0),
    Op('set', 'n', b'100', expect=True),
    Op('decr', 'n', 91, expect=9),
    Op('get', 'n', expect=b'9', number=True),
    Op('incr', 'n', 991, expect=1000),
    Op('get', 'n', expect=b'1000', number=True),
    Op('incr', 'nokey', 1, expect=None),
    Op('decr', 'nokey', 1, expect=None),
    Op('incr', 'n', -1, expect=CLIENT_ERROR),
    Op('incr', 'n', U64_MAX + 1, expect=CLIENT_ERROR),
    Op('set', 'n', b'abc', expect=True),
    Op('incr', 'n', 1, expect=CLIENT_ERROR),
    Op('decr', 'n', 1, expect=CLIENT_ERROR),
    Op('get', 'n', expect=b'abc'),
    Op('set', 'n', b'12abc', expect=True),
    Op('incr', 'n', 1, expect=CLIENT_ERROR),
    Op('set', 'n', str(U64_MAX + 1).encode(), expect=True),
    Op('incr', 'n', 1, expect=CLIENT_ERROR),
    # expiry: relative seconds, absolute unix time, negative; values over
    # 30 days (2592000 s) are absolute times
    Op('set', 'exp_1s', b'x', expire=1, expect=True),
    Op('set', 'exp_abs', b'x', expire=Now(1), expect=True),
    Op('set', 'exp_touched', b'x', expect=True),
    Op('touch', 'exp_touched', 1, expect=True),
    # read back at once with exptime 2, not 1: memcached's clock ticks once
    # a second, so an exptime-1 item may be gone by the next request
    Op('set', 'exp_2s', b'x', expire=2, expect=True),
    Op('get', 'exp_2s', expect=b'x'),
    Op('set', 'exp_10s', b'x', expire=10, expect=True),
    Op('set', 'exp_30d', b'x', expire=2592000, expect=True),
    Op('set', 'exp_1970', b'x', expire=2592001, expect=True),
    Op('set', 'exp_past', b'x', expire=Now(-1000), expect=True),
    Op('set', 'exp_future', b'x', expire=Now(1000), expect=True),
    Op('set', 'exp_neg', b'x', expire=-1, expect=True),
    Op('get_many', ['exp_30d', 'exp_1970', 'exp_past', 'exp_future',
                    'exp_neg'],
       expect={'exp_30d': b'x', 'exp_future': b'x'}),
    Scenario(pause_for_expiry, expect=None),
    Op('get_many', ['exp_1s', 'exp_abs', 'exp_touched', 'exp_10s',
                    'exp_30d'],
       expect={'exp_10s': b'x', 'exp_30d': b'x'}),
    Op('add', 'exp_1s', b'new', expect=True),
    Op('touch', 'exp_abs', 100, expect=False),
    # stats, eviction, concurrency
    Scenario(stats_deltas, expect={
        'missing stats': [],
        'deltas': {'cmd_get': 3, 'cmd_set': 1, 'get_hits': 1,
                   'get_misses': 2}}),
    Scenario(eviction_under_small_memory, expect={
        'answers version': True, 'latest 100 intact': True,
        'evictions counted': True, 'holds at most -m': True,
        'limit_maxbytes': 8 * MiB}),
    Scenario(concurrent_clients, expect={
        'faults': 0, 'incr counter': 400, 'cas counter': 100}),
    Op('version', expect=VERSION),
]


def answers(client):
    """Whether the server still answers version (pymemcache reconnects
    after an error)."""
    try:
        return bool(client.version())
    except Exception:
        return False


def run_suite(launcher, spec):
    """Run SUITE against a fresh server; return (its description,
    transcript, failures)."""
    server = launcher.start(spec, '-t', 2)
    run = Run(launcher, spec, server)
    transcript, failures = [], []
    for number, step in enumerate(SUITE, 1):
        try:
            result = normalise(step.perform(run))
        except Exception as e:      # the error is the step's result
            result = f'raises {type(e).__name__}'
        line = f'{number:3} {step.describe()} -> {result!r}'
        transcript.append(line)
        expect = normalise(step.expect)
        if result != expect:
            failures.append(f'{server.describe()}: step {line}, but '
                            f'memcached answers {expect!r}')
        if isinstance(result, str) and result.startswith('raises ') \
                and not answers(run.client):
            failures.append(f'{server.describe()}: stopped after step '
                            f'{number}: the server no longer answers')
            break
    run.client.close()
    return server.describe(), transcript, failures


def check(args, launcher):
    if Client is None:
        raise kvserver.Skip('pymemcache is not installed for '
                            '/usr/bin/python3 (apt-get install '
                            'python3-pymemcache)')
    names, transcripts, failures = [], [], []
    for spec in args.server:
        name, transcript, failed = run_suite(launcher, spec)
        names.append(name)
        transcripts.append(transcript)
        failures += failed
    for f in failures:
        print(f'FAIL: {f}')
    if len(transcripts) == 2 and transcripts[0] != transcripts[1]:
        a, b = names
        failures.append('transcripts differ')
        print(f'FAIL: the transcripts of {a} and {b} differ:')
        print('\n'.join(difflib.unified_diff(transcripts[0], transcripts[1],
                                             a, b, lineterm='')))
    if failures:
        return False
    print(f'{len(SUITE)} steps gave memcached\'s answers against '
          + ' and '.join(args.server)
          + (', with identical transcripts' if len(transcripts) == 2 else ''))
    return True


if __name__ == '__main__':
    kvserver.run(check, __doc__.splitlines()[0], max_servers=2)

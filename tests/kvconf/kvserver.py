"""kvserver.py - the launcher every kvconf check runs under.

A check is a function check(args, launcher) -> bool. run() parses its
command line (--server SPEC, once or more), and gives it a Launcher that
starts servers on free ports and waits until they accept connections.
Whatever happens next - the check passes, fails, raises, or the test is
killed by meson's timeout (SIGTERM) - every server is stopped with SIGTERM
and judged: a server that died on its own, exits non-zero after SIGTERM,
or printed a sanitizer report fails the test, and its stderr is shown
whenever the test fails. Exit codes follow tests/harness.h: 0 pass, 1
fail, 77 skip.

Server specs:
  memcached       stock /usr/bin/memcached (the test skips when missing);
  atoll-kv:PATH   atoll-kv at PATH, started with -p 0: it picks the port
                  and prints "listening on ADDR:PORT".
Both take memcached's flags, so a check passes the same options (-m, -I,
-c, -t) to either.
"""

import argparse
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

MEMCACHED = '/usr/bin/memcached'
HOST = '127.0.0.1'

# Sanitized servers (the asan and tsan builds) start and stop slowly on a
# loaded 2-core machine; these bounds only matter when something is wrong.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0

SANITIZER_REPORT = re.compile(
    r'ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer'
    r'|runtime error:|UndefinedBehaviorSanitizer')
LISTENING = re.compile(r'listening on (\S+):(\d+)')


class Skip(Exception):
    """The check cannot run here (a tool or package is missing)."""


class CheckFailed(Exception):
    """The check found a problem; the message says which."""


class Terminated(BaseException):
    """SIGTERM (meson's timeout) arrived. A BaseException, so the checks'
    `except Exception` that record a step's error cannot swallow it."""


_prctl = ctypes.CDLL(None, use_errno=True).prctl
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """Runs in the forked server before exec: the kernel kills the server
    if this launcher is killed hard (SIGKILL runs no cleanup in run()).
    Only a C call here; the launcher has reader threads at fork time."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _accepts(port):
    try:
        socket.create_connection((HOST, port), timeout=5).close()
        return True
    except OSError:
        return False


class _Stream(threading.Thread):
    """Collects one output pipe of a server, noting the port it announces."""

    def __init__(self, pipe, announced):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.announced = announced
        self.lines = []

    def run(self):
        for raw in self.pipe:
            line = raw.decode(errors='replace')
            self.lines.append(line)
            match = LISTENING.search(line)
            if match:
                self.announced(int(match.group(2)))
        self.pipe.close()


class Server:
    """One running server: .name, .port, .output()."""

    def __init__(self, spec, options):
        self.spec = spec
        if spec == 'memcached':
            self.name = 'memcached'
            self.path = MEMCACHED
        elif spec.startswith('atoll-kv:'):
            self.name = 'atoll-kv'
            self.path = spec[len('atoll-kv:'):]
        else:
            raise CheckFailed(f"unknown server '{spec}': use 'memcached' "
                              "or 'atoll-kv:PATH'")
        self.options = [str(o) for o in options]
        self.proc = None
        self.port = None
        self.streams = []
        self.problems = []

    def describe(self):
        return ' '.join([self.name] + self.options)

    def _argv(self, port):
        argv = [self.path, '-l', HOST, '-p', str(port)] + self.options
        if self.name == 'memcached':
            argv += ['-U', '0']
            # memcached refuses to run as root unless told which user to be.
            if os.geteuid() == 0:
                argv += ['-u', 'root']
        return argv

    def _spawn(self, port):
        announced = threading.Event()
        found = []

        def note(p):
            found.append(p)
            announced.set()

        self.proc = subprocess.Popen(self._argv(port),
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     preexec_fn=_die_with_parent)
        self.streams = [_Stream(self.proc.stdout, note),
                        _Stream(self.proc.stderr, note)]
        for s in self.streams:
            s.start()
        if port:
            return port
        deadline = time.monotonic() + START_TIMEOUT
        while not announced.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return None
        return found[0]

    def _wait_accepting(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if _accepts(self.port):
                return True
            time.sleep(0.05)
        return False

    def start(self):
        if not os.access(self.path, os.X_OK):
            if self.name == 'memcached':
                raise Skip(f'{self.path} is not installed '
                           '(apt-get install memcached)')
            raise CheckFailed(f'{self.path} is not an executable file')
        # memcached binds the port we choose; another process may take it
        # between our probe and memcached's bind, so retry with a new one.
        for _ in range(5):
            port = _free_port() if self.name == 'memcached' else 0
            self.port = self._spawn(port)
            if self.port and self._wait_accepting():
                return
            if self.proc.poll() is None or self.name != 'memcached':
                break
            self._reap()
        self.stop()
        if self.port is None:
            raise CheckFailed(f'{self.describe()} did not print "listening '
                              'on ADDR:PORT" on stdout or stderr')
        raise CheckFailed(f'{self.describe()} did not start accepting '
                          f'connections within {START_TIMEOUT:.0f} s')

    def _reap(self):
        for s in self.streams:
            s.join(STOP_TIMEOUT)

    def output(self):
        return ''.join(line for s in self.streams for line in s.lines)

    def stop(self):
        """Stop with SIGTERM; return the problems seen (empty when fine)."""
        if self.proc is None:
            return self.problems
        status = self.proc.poll()
        if status is not None:
            self.problems.append(f'{self.describe()} exited by itself with '
                                 f'status {status} while the check ran')
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                status = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                status = self.proc.wait()
                self.problems.append(f'{self.describe()} ignored SIGTERM for '
                                     f'{STOP_TIMEOUT:.0f} s and was killed')
            if status != 0:
                self.problems.append(f'{self.describe()} exited with status '
                                     f'{status} after SIGTERM (0 expected)')
        self._reap()
        if SANITIZER_REPORT.search(self.output()):
            self.problems.append(f'{self.describe()} printed a sanitizer '
                                 'report')
        self.proc = None
        return self.problems


class Launcher:
    """Starts servers for a check and remembers them for the cleanup."""

    def __init__(self):
        self.servers = []

    def start(self, spec, *options):
        server = Server(spec, options)
        self.servers.append(server)
        server.start()
        return server

    def stop_all(self):
        return [p for s in self.servers for p in s.stop()]


def _terminated(signum, frame):
    raise Terminated()


def run(check, description, max_servers=1):
    """Parse the command line, run check(args, launcher), exit 0/1/77."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--server', action='append', required=True,
                        metavar='SPEC',
                        help="'memcached' or 'atoll-kv:PATH'"
                        + (' (give it twice to compare two servers)'
                           if max_servers > 1 else ''))
    args = parser.parse_args()
    if len(args.server) > max_servers:
        parser.error(f'at most {max_servers} --server options')
    signal.signal(signal.SIGTERM, _terminated)

    launcher = Launcher()
    passed = False
    skipped = None
    try:
        passed = check(args, launcher)
    except Skip as e:
        skipped = str(e)
    except CheckFailed as e:
        print(f'FAIL: {e}', file=sys.stderr)
    except Terminated:
        print('FAIL: terminated by SIGTERM (a timeout?)', file=sys.stderr)
    except Exception:
        traceback.print_exc()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        problems = launcher.stop_all()
    for p in problems:
        print(f'FAIL: {p}', file=sys.stderr)
    if not problems and skipped is not None:
        print(f'SKIP: {skipped}')
        sys.exit(77)
    if not problems and passed:
        print('PASS')
        sys.exit(0)
    for s in launcher.servers:
        out = s.output()
        print(f'---- output of {s.describe()} '
              + ('----' if out else '(none) ----'), file=sys.stderr)
        sys.stderr.write(out)
    sys.exit(1)

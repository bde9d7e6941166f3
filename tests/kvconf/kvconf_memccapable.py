"""kvconf_memccapable.py - libmemcached's memcapable, ASCII protocol.

memccapable -a runs 27 ASCII tests (get, cas, incr, noreply variants, ...)
written by people who did not write the server, and all 27 pass against
stock memcached 1.6.18. The check passes only when every one passes.
"""

import os
import subprocess
import sys

import kvserver

MEMCCAPABLE = '/usr/bin/memccapable'
ASCII_TESTS = 27
IO_TIMEOUT = 30       # seconds per socket operation (-t); sanitized servers
RUN_TIMEOUT = 300     # are slow, and meson's own timeout ends a real hang


def show(stdout, stderr):
    """Print memccapable's verdicts, then its assertion messages (-v)."""
    for data in (stdout, stderr):
        sys.stderr.write((data or b'').decode(errors='replace'))


def check(args, launcher):
    if not os.access(MEMCCAPABLE, os.X_OK):
        raise kvserver.Skip(f'{MEMCCAPABLE} is not installed '
                            '(apt-get install libmemcached-tools)')
    server = launcher.start(args.server[0])
    argv = [MEMCCAPABLE, '-a', '-v', '-t', str(IO_TIMEOUT),
            '-h', kvserver.HOST, '-p', str(server.port)]
    try:
        run = subprocess.run(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        show(e.stdout, e.stderr)
        raise kvserver.CheckFailed(f'memccapable did not finish within '
                                   f'{RUN_TIMEOUT} s')
    output = run.stdout.decode(errors='replace')
    # With -v, a failed test's assertion lands between its name and its
    # verdict, so count verdicts rather than parse lines.
    passed = output.count('[pass]')
    if run.returncode == 0 and passed == ASCII_TESTS:
        print(f'memccapable: all {ASCII_TESTS} ASCII tests passed against '
              f'{server.describe()}')
        return True
    show(run.stdout, run.stderr)
    raise kvserver.CheckFailed(
        f'memccapable against {server.describe()}: {passed} of '
        f'{ASCII_TESTS} ASCII tests passed (exit status {run.returncode})')


if __name__ == '__main__':
    kvserver.run(check, __doc__.splitlines()[0])

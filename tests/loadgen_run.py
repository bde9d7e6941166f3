#!/usr/bin/python3
"""loadgen_run.py - bench/loadgen end to end: against stock memcached it
keeps the offered rate and reports sane figures in its JSON; against an
unreachable, silent, garbage-speaking, wrong-key or hanging-up server, and
with bad options, it exits non-zero with a sentence saying what is wrong.

Usage: loadgen_run.py PATH_TO_LOADGEN. Exit 0 pass, 1 fail, 77 skip
(no memcached installed).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

LOADGEN = sys.argv[1] if len(sys.argv) > 1 else ""
FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL: " + what, file=sys.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, timeout=60):
    p = subprocess.run([LOADGEN, *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def start_memcached():
    port = free_port()
    proc = subprocess.Popen(["memcached", "-p", str(port), "-U", "0", "-t",
                             "1", "-l", "127.0.0.1", "-u", "root"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("FAIL: memcached did not start listening")


def loadgen_json(port, *args):
    """Run loadgen against port; its JSON, or None (a check failed)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        rc, so, se = run("-s", "127.0.0.1:%d" % port, *args, "--json", out)
        check(rc == 0, "loadgen %s exits 0 (rc %d: %s)"
              % (" ".join(args), rc, se.strip()))
        if rc:
            return None
        check("p99.9" in so and "achieved" in so, "a table on stdout")
        with open(out) as f:
            return json.load(f)


def test_against_memcached():
    proc, port = start_memcached()
    try:
        # One outstanding per connection, Poisson; then pipelined batches
        # from two threads with fixed gaps (every reply is still checked
        # against its request, so a batch out of order fails).
        docs = [loadgen_json(port, "-r", "2k,4k", "-d", "0.5", "-w", "0.1",
                             "-c", "4", "-k", "1000", "-z", "0.99", "-v",
                             "16-64"),
                loadgen_json(port, "-r", "2k,4k", "-d", "0.5", "-w", "0.1",
                             "-c", "4", "-T", "2", "--depth", "8", "-a",
                             "fixed", "-k", "1000", "-v", "16-64",
                             "--no-preload")]
    finally:
        proc.kill()
        proc.wait()
    for doc in docs:
        if doc:
            check_steps(doc)


def loadgen_cpu(port, *args):
    """Run loadgen quietly against port: (exit code, its cpu time, the
    wall time, its stderr)."""
    start = time.monotonic()
    gen = subprocess.Popen([LOADGEN, "-s", "127.0.0.1:%d" % port, "-q",
                            *args], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    _, status, ru = os.wait4(gen.pid, 0)
    wall = time.monotonic() - start
    err = gen.stderr.read().decode().strip()
    gen.stderr.close()
    return (os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime,
            wall, err)


def test_poll_budget():
    """--spin-us 1e6 would spin through the whole window; --poll-max 20
    must hold the generator to about a fifth of the cpu all the same,
    also when every connection waits for a slow server (arrivals then
    fall due with nowhere to go: the generator must sleep for a reply)."""
    proc, port = start_memcached()
    try:
        rc, cpu, wall, err = loadgen_cpu(port, "-r", "500", "-d", "2", "-w",
                                         "0.2", "-c", "2", "-k", "100",
                                         "--spin-us", "1000000",
                                         "--poll-max", "20")
    finally:
        proc.kill()
        proc.wait()
    check(rc == 0, "loadgen --poll-max 20 exits 0 (rc %d: %s)" % (rc, err))
    check(cpu < 0.6 * wall, "--poll-max 20 caps polling: %.2f s of cpu in "
          "%.2f s" % (cpu, wall))
    srv = FakeServer(slow_handler)
    rc, cpu, wall, err = loadgen_cpu(srv.port, "-r", "1k", "-d", "2", "-w",
                                     "0", "-c", "2", "-k", "100",
                                     "--no-preload", "--grace", "0.5",
                                     "--poll-max", "20")
    srv.close()
    check(rc == 0, "loadgen against a slow server exits 0 (rc %d: %s)"
          % (rc, err))
    check(cpu < 0.6 * wall, "--poll-max 20 caps polling while backlogged: "
          "%.2f s of cpu in %.2f s" % (cpu, wall))


def check_steps(doc):
    check(doc["config"]["connections"] == 4, "config in the JSON")
    steps = doc["steps"]
    check(len(steps) == 2, "one step per rate")
    for st in steps:
        off = st["offered"]
        check(0.6 * off < st["achieved"] < 1.4 * off,
              "achieved %.0f near offered %.0f" % (st["achieved"], off))
        check(st["unanswered"] == 0 and st["errors"] == 0,
              "every request answered, no errors")
        check(st["misses"] == 0, "no misses after the preload")
        check(st["gets"] + st["sets"] == st["completed"],
              "gets + sets == completed")
        check(0.8 < st["gets"] / st["completed"] < 0.97,
              "about 90%% gets (%d of %d)" % (st["gets"], st["completed"]))
        check(st["hits"] == st["gets"], "every get hits")
        check(0 < st["p50_us"] <= st["p99_us"] <= st["p999_us"]
              <= st["max_us"], "ordered percentiles")
        check(abs(st["scheduled"] - off * 0.5) < 0.3 * off * 0.5,
              "about rate x duration requests scheduled")
        check(st["slices"] == 50, "0.5 s of 10 ms slices")
        check(0 < st["typ_p50_us"] <= st["typ_p99_us"] <= st["typ_p999_us"],
              "ordered typical percentiles")


class FakeServer:
    """A TCP server on a free port; handler(conn) serves each client."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def lines(c):
    """Yield request lines; a set's data line is skipped."""
    buf = b""
    while True:
        data = c.recv(65536)
        if not data:
            return
        buf += data
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if line.startswith(b"set "):
                n = int(line.split()[4])
                while len(buf) < n + 2:
                    more = c.recv(65536)
                    if not more:
                        return
                    buf += more
                buf = buf[n + 2:]
            yield line


def garbage_handler(c):
    for _ in lines(c):
        c.sendall(b"HTTP/1.0 400 Bad Request\r\n")


def silent_handler(c):
    for _ in lines(c):
        pass


def hangup_handler(c):
    for line in lines(c):
        if line == b"version":
            c.sendall(b"VERSION 1.6.18\r\n")
        else:
            return          # hang up at the first real request


def slow_handler(c):
    """Every get answered after 20 ms: far below the offered rate."""
    for line in lines(c):
        if line == b"version":
            c.sendall(b"VERSION 1.6.18\r\n")
        elif line.startswith(b"get "):
            time.sleep(0.02)
            c.sendall(b"END\r\n")
        else:
            c.sendall(b"STORED\r\n")


def wrong_key_handler(c):
    for line in lines(c):
        if line == b"version":
            c.sendall(b"VERSION 1.6.18\r\n")
        elif line.startswith(b"get "):
            c.sendall(b"VALUE kwrong 0 32\r\n" + b"x" * 32 + b"\r\nEND\r\n")
        else:
            c.sendall(b"STORED\r\n")


def expect_failure(handler, needle, what, *extra):
    srv = FakeServer(handler) if handler else None
    port = srv.port if srv else free_port()
    rc, _, se = run("-s", "127.0.0.1:%d" % port, "-r", "1k", "-d", "0.3",
                    "-w", "0", "-c", "2", "-k", "100", *extra)
    if srv:
        srv.close()
    check(rc == 1 and needle in se,
          "%s: exit 1 with '%s' (rc %d, stderr: %s)"
          % (what, needle, rc, se.strip()))


def test_bad_servers():
    expect_failure(None, "cannot connect", "nothing listening")
    expect_failure(garbage_handler, "answered garbage", "garbage server")
    expect_failure(silent_handler, "did not answer 'version'",
                   "silent server")
    expect_failure(hangup_handler, "closed a connection",
                   "server hanging up", "--no-preload")
    expect_failure(wrong_key_handler, "another key", "wrong key",
                   "--no-preload")


def test_bad_options():
    bad = [
        (["-c", "0", "-r", "1k"], "--conns wants a whole number"),
        (["-r", "1k", "-c", "lots"], "--conns wants a whole number"),
        ([], "no rate given"),
        (["-r", "fast"], "is not a rate"),
        (["-r", "10k:5k:1k"], "ends below its start"),
        (["-r", "1k,"], "ends with a comma"),
        (["-r", "1k", "-z", "3"], "--zipf wants a number"),
        (["-r", "1k", "-v", "10-5"], "ends below its start"),
        (["-r", "1k", "-v", "2000000"], "--value-size wants"),
        (["-r", "1k", "-k", "100000", "--key-len", "4"], "too short"),
        (["-r", "1k", "-a", "bursty"], "'poisson' or 'fixed'"),
        (["-r", "1k", "--cpus", "zero"], "--cpus wants a cpu list"),
        (["-r", "1k", "-d", "forever"], "--duration wants a time"),
        (["-r", "1k", "-T", "8", "-c", "4"], "at least as many connections"),
        (["-r", "1k", "--fifo", "100"], "--fifo wants a whole number"),
        (["-r", "1k", "--poll-max", "0"], "--poll-max wants a whole number"),
        (["-r", "1k", "-s", "localhost:99999"], "--server (port)"),
        (["-r", "1k", "stray"], "unexpected argument"),
        (["--bogus"], "--help lists the options"),
    ]
    for args, needle in bad:
        rc, _, se = run(*args)
        check(rc == 2 and needle in se,
              "loadgen %s: exit 2 with '%s' (rc %d, stderr: %s)"
              % (" ".join(args), needle, rc, se.strip()))
    rc, so, _ = run("--help")
    check(rc == 0 and "usage: loadgen" in so, "--help")


def main():
    if not LOADGEN or not os.access(LOADGEN, os.X_OK):
        print("usage: loadgen_run.py PATH_TO_LOADGEN", file=sys.stderr)
        return 1
    test_bad_options()
    test_bad_servers()
    if shutil.which("memcached"):
        test_against_memcached()
        test_poll_budget()
    else:
        print("SKIP: memcached is not installed (scripts/deps.sh installs "
              "it); only the error paths were tested")
        return 77 if not FAILED else 1
    if FAILED:
        print("%d checks failed" % len(FAILED), file=sys.stderr)
        return 1
    print("loadgen_run: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

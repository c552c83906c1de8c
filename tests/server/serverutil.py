"""Helpers of the server tests that drive `smdiff serve` with outside
programs (curl, wrk, haproxy, the OpenAI Node SDK, chromium): start the CLI
on a free port, talk HTTP with the standard library, skip with a reason.

A script exits 0 when its checks pass, 77 (after printing "SKIP: why") when
something it needs is missing, anything else on failure. tests/test_serve_tools.c
runs them in `make check`. CI installs every tool they use (.ci/run) and sets
SMDIFF_REQUIRE_SERVER_TOOLS=1: there a missing tool is a failure, not a skip
that would let the check pass without running."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD") or "build/cc"
SANITIZED = BUILD.rstrip("/").endswith("-san")
MODEL = os.path.join(ROOT, "models", "smdiff-gutenberg-18m-sm.gguf")


def skip(reason):
    if os.environ.get("SMDIFF_REQUIRE_SERVER_TOOLS") == "1":
        fail("SMDIFF_REQUIRE_SERVER_TOOLS=1 (CI) but " + reason)
    print("SKIP: " + reason)
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def cli():
    path = os.path.join(ROOT, BUILD, "smdiff")
    if not os.access(path, os.X_OK):
        skip("the CLI %s is not built" % path)
    if not os.path.exists(MODEL):
        skip("the bundled model %s is missing" % MODEL)
    return path


def need(program):
    path = shutil.which(program)
    if not path:
        skip("%s is not installed (Debian package in scripts/debian-packages.txt)" % program)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """`smdiff serve --port 0 ARGS`, its port read from its first line."""

    def __init__(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([cli(), "serve", "--port", "0", "--threads", "1", *args], cwd=ROOT,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=e, text=True)
        self.lines = []
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"listening on http://[^ ]*:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if not self.port:
            self.proc.kill()
            fail("smdiff serve did not start: " + "".join(self.lines))
        self.url = "http://127.0.0.1:%d" % self.port
        self.drain = threading.Thread(target=self._drain, daemon=True)
        self.drain.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal, wait; the exit status (None if it had to be killed). The
        log is complete on return: its last lines may still be in the pipe
        when the process has exited, so the reader is waited for too."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.drain.join(10)
        return code

    def log(self):
        return "".join(self.lines)


def request(port, method, path, body=None, headers=None, timeout=60):
    """(status, headers dict with lower-case names, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    text = r.read().decode("utf-8")
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, text)
    c.close()
    return out


def metrics(port):
    status, _, text = request(port, "GET", "/metrics")
    check(status == 200, "/metrics answered %d" % status)
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def sanitizer_report(log):
    return re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", log)

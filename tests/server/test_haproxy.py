#!/usr/bin/env python3
"""Scale-out as operators do it: two `smdiff serve` instances behind haproxy
(Debian) with the example configuration examples/serve/haproxy.cfg, used
as it is (addresses from its environment variables). Requests through the
balancer are answered by both instances; after one instance is killed
(SIGKILL: no goodbye), every later request is still answered."""
import json
import os
import signal
import subprocess
import time

from serverutil import ROOT, Server, check, fail, free_port, need, request

BODY = {"prompt": "It was a dark and stormy night, and", "max_tokens": 6, "steps": 3}


def wait_up(port, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            status, _, _ = request(port, "GET", "/health", timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    fail("haproxy never answered /health")


def main():
    haproxy = need("haproxy")
    a, b = Server("--name", "s1"), Server("--name", "s2")
    front = free_port()
    env = dict(os.environ, SMDIFF_FRONT="127.0.0.1:%d" % front, SMDIFF_S1="127.0.0.1:%d" % a.port,
               SMDIFF_S2="127.0.0.1:%d" % b.port)
    hp = subprocess.Popen([haproxy, "-db", "-f", os.path.join(ROOT, "examples", "serve", "haproxy.cfg")], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_up(front)
        time.sleep(1.2)  # both servers pass "rise 2" health checks
        seen = set()
        for _ in range(8):
            status, _, body = request(front, "POST", "/v1/completions", BODY)
            check(status == 200, "through haproxy: %d %s" % (status, body))
            seen.add(json.loads(body)["model"])
        print("answered by %s" % sorted(seen))
        check(seen == {"s1", "s2"}, "leastconn should use both instances, saw %s" % seen)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        answered = 0
        for i in range(12):
            status, _, body = request(front, "POST", "/v1/completions", BODY)
            check(status == 200, "request %d after the kill: %d %s" % (i, status, body))
            check(json.loads(body)["model"] == "s2", "answered by a dead instance?")
            answered += 1
        print("after killing s1: %d/12 answered by s2" % answered)
    finally:
        hp.terminate()
        try:
            out, _ = hp.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            hp.kill()
            out, _ = hp.communicate()
        a.stop(signal.SIGKILL)
        code = b.stop()
    check(code == 0, "s2 exited with %s" % code)
    print("haproxy: ok")


if __name__ == "__main__":
    main()

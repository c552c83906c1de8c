#!/usr/bin/env python3
"""Load on loopback with wrk (Debian): /health, then completions with more
concurrent clients than slots + queue. Every request must be answered --
200, or a deliberate 429 for completions -- with no socket error, the
server's own counts must agree with wrk's, resident memory must stay flat
across rounds (no leak), and SIGTERM must end the server with status 0.
Under AddressSanitizer (BUILD ending in -san) the run is shorter and the
leak check is LeakSanitizer's at exit instead of RSS (ASan's quarantine
holds freed memory on purpose)."""
import os
import re
import subprocess

from serverutil import SANITIZED, Server, check, fail, metrics, need, sanitizer_report

HERE = os.path.dirname(os.path.abspath(__file__))
BODY = '{"prompt":"It was a dark and stormy night, and","max_tokens":8,"steps":4}'


def wrk(url, conns, seconds, body=None):
    env = dict(os.environ, SMDIFF_WRK_BODY=body or "")
    out = subprocess.run([need("wrk"), "-t2", "-c%d" % conns, "-d%ds" % seconds, "--timeout", "20s",
                          "-s", os.path.join(HERE, "wrk_tally.lua"), url],
                         capture_output=True, text=True, env=env, timeout=seconds + 60)
    if out.returncode:
        fail("wrk failed: " + out.stdout + out.stderr)
    status = {int(k): int(v) for k, v in re.findall(r"(\d+)=(\d+)", out.stdout.split("STATUS", 1)[1].split("\n", 1)[0])}
    summary = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", out.stdout.split("SUMMARY", 1)[1]))
    return status, summary


def main():
    need("wrk")
    slots, queue = 2, 2
    srv = Server("--slots", str(slots), "--queue", str(queue))
    try:
        # /health: everything 200, no socket errors
        status, s = wrk(srv.url + "/health", 32, 1 if SANITIZED else 2)
        print("health: %s %s" % (status, s))
        check(s["connect"] + s["read"] + s["write"] + s["timeout"] == 0, "socket errors on /health: %s" % s)
        check(set(status) == {200}, "non-200 answers on /health: %s" % status)
        check(sum(status.values()) == s["requests"], "wrk counted %d requests, %d answers" % (s["requests"], sum(status.values())))

        # completions: 16 clients against 2 slots + 2 waiting
        rounds = 1 if SANITIZED else 3
        rss = []
        answered = {200: 0, 429: 0}
        for r in range(rounds):
            status, s = wrk(srv.url + "/v1/completions", 16, 2, BODY)
            rss.append(srv.rss_kib())
            print("completions round %d: %s %s rss %d KiB" % (r, status, s, rss[-1]))
            check(s["connect"] + s["read"] + s["write"] + s["timeout"] == 0, "socket errors: %s" % s)
            check(set(status) <= {200, 429}, "answers other than 200/429: %s" % status)
            check(sum(status.values()) == s["requests"], "requests without an answer: %s vs %s" % (status, s))
            check(status.get(200, 0) > 0 and status.get(429, 0) > 0, "expected both 200 and 429: %s" % status)
            for k in answered:
                answered[k] += status.get(k, 0)
        m = metrics(srv.port)
        served = {k: m.get('smdiff_requests_total{endpoint="/v1/completions",status="%d"}' % k, 0) for k in answered}
        print("wrk counted %s, the server %s" % (answered, served))
        # wrk stops counting at its deadline; the server may answer up to one
        # request per connection after it
        for k in answered:
            check(answered[k] <= served[k] <= answered[k] + 16 * rounds, "counts disagree: wrk %s, server %s" % (answered, served))
        check(m.get("smdiff_slots_busy") is not None, "no slots gauge")
        if not SANITIZED:
            # the first round warms the allocator; after it, memory stays put
            growth = max(rss[1:]) - rss[1]
            print("RSS after each round (KiB): %s; growth after warm-up %d KiB" % (rss, growth))
            check(growth < 4096, "resident memory grew by %d KiB across rounds: %s" % (growth, rss))
    finally:
        code = srv.stop()
    check(code == 0, "smdiff serve exited with %s after SIGTERM\n%s" % (code, srv.log()[-2000:]))
    check(not sanitizer_report(srv.log()), "sanitizer report:\n" + srv.log()[-4000:])
    print("load: ok")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load on loopback with wrk (Debian): /health, then completions with more
concurrent clients than slots + queue. Every request must be answered --
200, or a deliberate 429 for completions -- with no socket error, the
server's own counts must agree with wrk's, resident memory must stay flat
across rounds (no leak), and SIGTERM must end the server with status 0. Memory: smdiff's own live
allocations (the /metrics gauge smdiff_heap_blocks) must return to the same
count after every round, and resident memory stay within 16 MiB.
Under AddressSanitizer (BUILD ending in -san) the run is shorter and the
leak check is LeakSanitizer's at exit instead of RSS (ASan's quarantine
holds freed memory on purpose)."""
import os
import re
import subprocess
import time

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


def settle(port):
    """Metrics once only this request's connection is open."""
    for _ in range(200):
        m = metrics(port)
        if m["smdiff_connections"] == 1 and m["smdiff_slots_busy"] == 0:
            return m
        time.sleep(0.02)
    fail("connections stayed open after wrk ended: %s" % m["smdiff_connections"])


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

        # completions: 16 clients against 2 slots + 2 waiting; after each
        # round, once every wrk connection is gone, resident memory and the
        # blocks smdiff's allocator has out
        rounds = 3 if SANITIZED else 4
        rss, blocks = [], []
        answered = {200: 0, 429: 0}
        for r in range(rounds):
            status, s = wrk(srv.url + "/v1/completions", 16, 2, BODY)
            idle = settle(srv.port)
            rss.append(srv.rss_kib())
            blocks.append(idle["smdiff_heap_blocks"])
            print("completions round %d: %s %s rss %d KiB, %d heap blocks" % (r, status, s, rss[-1], blocks[-1]))
            check(s["connect"] + s["read"] + s["write"] + s["timeout"] == 0, "socket errors: %s" % s)
            check(set(status) <= {200, 429}, "answers other than 200/429: %s" % status)
            check(sum(status.values()) == s["requests"], "requests without an answer: %s vs %s" % (status, s))
            check(status.get(429, 0) > 0, "more clients than slots + queue, yet no 429: %s" % status)
            for k in answered:
                answered[k] += status.get(k, 0)
        check(answered[200] > 0, "no generation finished under load: %s" % answered)
        m = metrics(srv.port)
        served = {k: m.get('smdiff_requests_total{endpoint="/v1/completions",status="%d"}' % k, 0) for k in answered}
        print("wrk counted %s, the server %s" % (answered, served))
        # wrk stops counting at its deadline; the server may answer up to one
        # request per connection after it
        for k in answered:
            check(answered[k] <= served[k] <= answered[k] + 16 * rounds, "counts disagree: wrk %s, server %s" % (answered, served))
        # the first round warms the allocator up; after it nothing may stay
        # behind: smdiff's own blocks exactly, resident memory within the
        # allocator's ups and downs (glibc arenas of the worker threads)
        print("heap blocks after each round: %s; RSS (KiB): %s" % (blocks, rss))
        check(len(set(blocks[1:])) <= 1, "smdiff's live allocations grew across rounds: %s" % blocks)
        if not SANITIZED:
            spread = max(rss[1:]) - min(rss[1:])
            check(spread < 16384, "resident memory moved by %d KiB across rounds: %s" % (spread, rss))
    finally:
        code = srv.stop()
    check(code == 0, "smdiff serve exited with %s after SIGTERM\n%s" % (code, srv.log()[-2000:]))
    check(not sanitizer_report(srv.log()), "sanitizer report:\n" + srv.log()[-4000:])
    print("load: ok")


if __name__ == "__main__":
    main()

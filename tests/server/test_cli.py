#!/usr/bin/env python3
"""`smdiff serve` as a program: its arguments (numbers checked as numbers,
ranges as the library's), a port already taken, the 127.0.0.1 default,
SIGTERM on an idle server and during a generation (exit 0, the running
request answered or aborted within the grace), and /metrics read by the
Prometheus client library's own parser (python3-prometheus-client)."""
import json
import os
import signal
import subprocess
import threading
import time

from serverutil import Server, check, cli, fail, metrics, request, sanitizer_report


def run(*args):
    return subprocess.run([cli(), "serve", *args], capture_output=True, text=True, timeout=60)


def main():
    r = run("--port", "abc")
    check(r.returncode == 2 and "'abc' is not a number" in r.stderr, "--port abc: %d %s" % (r.returncode, r.stderr))
    r = run("--slots", "0", "--port", "0")
    check(r.returncode == 2 and "--slots: 0 is out of range [1, 1024]" in r.stderr, "--slots 0: %s" % r.stderr)
    r = run("--slots", "1.5")
    check(r.returncode == 2 and "'1.5' is not an integer" in r.stderr, "--slots 1.5: %s" % r.stderr)
    r = run("--read-timeout", "0", "--port", "0")
    check(r.returncode == 2 and "read_timeout" in r.stderr and "outside (0, 3600]" in r.stderr,
          "--read-timeout 0 (an open bound the library refuses): %s" % r.stderr)
    r = run("--bogus")
    check(r.returncode == 2 and "unknown option '--bogus'" in r.stderr, "--bogus: %s" % r.stderr)
    r = run("stray")
    check(r.returncode == 2 and "unexpected argument 'stray'" in r.stderr, "stray: %s" % r.stderr)
    r = run("--help")
    check(r.returncode == 0 and "--api-key" in r.stdout and "--queue" in r.stdout, "--help")
    r = run("-m", "/no/such/model.gguf")
    check(r.returncode == 1 and "/no/such/model.gguf" in r.stderr, "missing model: %s" % r.stderr)

    srv = Server("--grace", "0.5")
    try:
        check("listening on http://127.0.0.1:" in srv.log(), "not on 127.0.0.1 by default: " + srv.log())
        r = run("--port", str(srv.port))
        check(r.returncode == 1 and "address already in use" in r.stderr, "port taken: %s" % r.stderr)

        # Prometheus's own parser reads /metrics
        request(srv.port, "POST", "/v1/completions", {"prompt": "Hello", "max_tokens": 4, "steps": 2})
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            if os.environ.get("SMDIFF_REQUIRE_SERVER_TOOLS") == "1":
                fail("SMDIFF_REQUIRE_SERVER_TOOLS=1 (CI) but python3-prometheus-client is not installed")
            print("note: python3-prometheus-client is missing; /metrics checked by the line format only")
            text_string_to_metric_families = None
        if text_string_to_metric_families:
            _, headers, text = request(srv.port, "GET", "/metrics")
            check(headers["content-type"].startswith("text/plain; version=0.0.4"), headers["content-type"])
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            for name, kind in [("smdiff_requests", "counter"), ("smdiff_request_duration_seconds", "histogram"),
                               ("smdiff_step_seconds", "histogram"), ("smdiff_queue_depth", "gauge"),
                               ("smdiff_completion_tokens", "counter"), ("smdiff_generations_aborted", "counter")]:
                check(name in fams and fams[name].type == kind, "metric %s (%s) missing: %s" % (name, kind, sorted(fams)))
            steps = [s for s in fams["smdiff_step_seconds"].samples if s.name == "smdiff_step_seconds_count"]
            check(steps and steps[0].value == 2, "step count %s" % steps)
            print("prometheus_client parsed %d metric families" % len(fams))
        m = metrics(srv.port)
        check(m["smdiff_completion_tokens_total"] == 4, "completion tokens %s" % m["smdiff_completion_tokens_total"])

        # SIGTERM during a long generation: answered (503: aborted after the
        # grace) and the process exits 0 soon after
        out = {}

        def long_request():
            out["r"] = request(srv.port, "POST", "/v1/completions",
                               {"prompt": "It was", "max_tokens": 120, "steps": 120})

        t = threading.Thread(target=long_request)
        t.start()
        while metrics(srv.port).get("smdiff_slots_busy") != 1:
            time.sleep(0.02)
        t0 = time.time()
        code = srv.stop(signal.SIGTERM, timeout=30)
        took = time.time() - t0
        t.join()
        status, _, body = out["r"]
        print("SIGTERM: exit %s after %.2f s; the running request got %d" % (code, took, status))
        check(code == 0, "exit status %s after SIGTERM\n%s" % (code, srv.log()))
        check(status == 503 and json.loads(body)["error"]["code"] == "shutting_down", "request: %d %s" % (status, body))
        check(took < 5, "stopping took %.1f s with a grace of 0.5 s" % took)
        check("stopped" in srv.log(), srv.log())
    finally:
        srv.stop(signal.SIGKILL)
    check(not sanitizer_report(srv.log()), srv.log())

    # an idle server stops at once
    srv = Server()
    t0 = time.time()
    code = srv.stop()
    check(code == 0 and time.time() - t0 < 3, "idle stop: %s" % code)
    print("cli: ok")


if __name__ == "__main__":
    main()

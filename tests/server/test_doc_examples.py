#!/usr/bin/env python3
"""Every `curl` example of docs/SERVER.md, run exactly as printed (bash,
with SMDIFF_URL pointing at a server started for the test, as the doc's
`export` line says), and its answer checked: JSON without an "error" (or
with one where the text before the block says "expected: 400"), a stream
of JSON events ending with [DONE], or metrics lines."""
import json
import os
import re
import subprocess

from serverutil import ROOT, Server, check, fail, need

DOC = os.path.join(ROOT, "docs", "SERVER.md")


def examples():
    text = open(DOC, encoding="utf-8").read()
    out = []
    for m in re.finditer(r"```sh\n(.*?)```", text, re.S):
        block = m.group(1)
        if block.lstrip().startswith("curl"):
            before = text[:m.start()].rstrip().rsplit("\n\n", 1)[-1]
            out.append((block, "expected: 400" in before))
    return text, out


def check_answer(block, out, want_error):
    if "/metrics" in block:
        lines = [l for l in out.splitlines() if l]
        check(lines and all(re.match(r'^smdiff_requests_total\{[^}]*\} \d+$', l) for l in lines), "metrics: " + out)
        return
    if '"stream": true' in block:
        events = [l[6:] for l in out.splitlines() if l.startswith("data: ")]
        check(events and events[-1] == "[DONE]", "stream without [DONE]: " + out[-300:])
        for e in events[:-1]:
            check("error" not in json.loads(e), "error event: " + e)
        if '"stream_steps": true' in block:
            check(any("smdiff_step" in json.loads(e) for e in events[:-1]), "no step events")
        return
    v = json.loads(out)
    if want_error:
        check(v.get("error", {}).get("param") == "max_tokens", "expected an error naming max_tokens: " + out)
    else:
        check("error" not in v, "error answer: " + out)


def main():
    need("curl")
    text, blocks = examples()
    check(len(blocks) >= 8, "only %d curl examples found in %s" % (len(blocks), DOC))
    check("export SMDIFF_URL=http://127.0.0.1:8080" in text, "the doc no longer says how SMDIFF_URL is set")
    srv = Server()
    try:
        env = dict(os.environ, SMDIFF_URL=srv.url, SMDIFF_API_KEY="any-key")
        for block, want_error in blocks:
            r = subprocess.run(["bash", "-o", "pipefail", "-c", block], capture_output=True, text=True, env=env,
                               timeout=120)
            if r.returncode:
                fail("example failed (%d): %s\n%s" % (r.returncode, block, r.stderr))
            check_answer(block, r.stdout, want_error)
            print("ok: %s" % block.splitlines()[0][:90])
    finally:
        code = srv.stop()
    check(code == 0, "smdiff serve exited with %s" % code)
    print("%d examples of docs/SERVER.md ran as printed" % len(blocks))


if __name__ == "__main__":
    main()

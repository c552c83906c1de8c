#!/usr/bin/env python3
"""The playground page at / in a real headless browser (Debian chromium),
driven over the DevTools protocol on a pipe (--remote-debugging-pipe, so
no extra client library is needed): load the page from a running server,
type a prompt, press Denoise, watch the canvas while it denoises, wait for
completion, check what the page shows, and save screenshots:
  $BUILD/server-playground-denoising.png   during the run
  $BUILD/server-playground.png             once done
SMDIFF_SCREENSHOT_DIR=docs makes it write them there instead (that is how
docs/server-playground*.png were made)."""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

from serverutil import BUILD, ROOT, Server, check, fail, need, skip

PROMPT = "It was a dark and stormy night, and"


class Browser:
    def __init__(self, exe):
        self.tmp = tempfile.mkdtemp(prefix="smdiff-chromium-")
        # keep the child's ends clear of 3 and 4, which they are moved to
        high = lambda fd: (fcntl.fcntl(fd, fcntl.F_DUPFD, 10), os.close(fd))[0]
        to_chrome_r, self.to_chrome = map(high, os.pipe())
        self.from_chrome, from_chrome_w = map(high, os.pipe())

        # the shell moves our pipe ends to fds 3 (commands) and 4 (answers)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--hide-scrollbars", "--remote-debugging-pipe", "--user-data-dir=" + self.tmp,
                "--window-size=1200,720", "about:blank"]
        self.proc = subprocess.Popen(
            ["bash", "-c", 'exec "$0" "$@" 3<&%d 4>&%d' % (to_chrome_r, from_chrome_w), exe, *args],
            pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.tmp, "stderr.txt"), "w"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, timeout=60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        while time.time() < end:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        fail("%s: %s" % (method, reply["error"]))
                    return reply.get("result", {})
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                with open(os.path.join(self.tmp, "stderr.txt")) as f:
                    fail("chromium closed the pipe during %s:\n%s" % (method, f.read()[-3000:]))
            self.buf += chunk
        fail("no answer to %s" % method)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            fail("page script failed: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        print("screenshot: %s" % path)

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        skip("chromium is not installed (Debian package chromium)")
    out_dir = os.environ.get("SMDIFF_SCREENSHOT_DIR") or os.path.join(ROOT, BUILD)
    srv = Server()
    b = Browser(exe)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        b.session = None
        b.session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.call("Page.enable")
        b.call("Page.navigate", {"url": srv.url + "/"})
        end = time.time() + 30
        while time.time() < end and b.eval("document.readyState + '|' + (document.getElementById('strategy') || {options: []}).options.length") != "complete|7":
            time.sleep(0.1)
        check(b.eval("document.getElementById('model').textContent").startswith("smdiff-gutenberg-18m-sm"),
              "the page did not load the model list")
        # a person typing a prompt and pressing the button
        b.eval("""(() => {
            const set = (id, v) => { const e = document.getElementById(id); e.value = v; };
            set('prompt', %s); set('max_tokens', '48'); set('steps', '48'); set('block_length', '0');
            set('softmask', 'entropy'); set('softmask_scale', '0.9'); set('softmask_steepness', '1');
            set('softmask_centre', '-6');
            document.getElementById('go').click(); })()""" % json.dumps(PROMPT))
        mid_saved = False
        end = time.time() + 120
        state = None
        while time.time() < end:
            state, step = b.eval("[document.body.dataset.state, +(document.body.dataset.step || 0)]")
            if state != "running":
                break
            if not mid_saved and step >= 20:
                b.screenshot(os.path.join(out_dir, "server-playground-denoising.png"))
                masked = b.eval("document.querySelectorAll('#canvas .mask').length")
                check(masked > 0, "no masked cells drawn mid-way")
                mid_saved = True
            time.sleep(0.03)
        check(state == "done", "the page ended in state %s: %s" % (state, b.eval("document.getElementById('status').textContent")))
        status = b.eval("document.getElementById('status').textContent")
        text = b.eval("document.getElementById('text').textContent")
        tokens = b.eval("document.querySelectorAll('#canvas .tok').length")
        top = float(b.eval("document.body.dataset.maxLambda"))
        print("status: %s | %d token cells | max lambda drawn %.3f | text %r" % (status, tokens, top, text[:60]))
        check(status.startswith("done") and "48 steps" in status, "status line: " + status)
        check(len(text) > 0, "no text shown")
        check(tokens > 0, "no committed token drawn")
        check(top > 0, "no soft-masked position was shaded (lambda > 0)")
        check(mid_saved, "the run ended before a mid-way screenshot")
        b.screenshot(os.path.join(out_dir, "server-playground.png"))
    finally:
        b.close()
        code = srv.stop()
    check(code == 0, "smdiff serve exited with %s" % code)
    print("playground: ok")


if __name__ == "__main__":
    main()

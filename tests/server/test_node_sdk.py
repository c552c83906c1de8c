#!/usr/bin/env python3
"""The official OpenAI Node SDK against `smdiff serve` (tests/server/node/
sdk.test.mjs). Needs node and the SDK installed by `npm ci` in
tests/server/node (CI's .ci/run does it); skips with that reason otherwise."""
import os
import subprocess

from serverutil import Server, check, need, skip

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")


def main():
    node = need("node")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "openai")):
        skip("the OpenAI Node SDK is not installed: run `npm ci` in tests/server/node")
    srv = Server("--api-key", "test-key", "--name", "smdiff-test")
    try:
        env = dict(os.environ, SMDIFF_URL=srv.url, SMDIFF_API_KEY="test-key", SMDIFF_MODEL_ID="smdiff-test")
        out = subprocess.run([node, "sdk.test.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300)
        print(out.stdout + out.stderr)
        check(out.returncode == 0, "the Node SDK test failed")
    finally:
        code = srv.stop()
    check(code == 0, "smdiff serve exited with %s" % code)


if __name__ == "__main__":
    main()

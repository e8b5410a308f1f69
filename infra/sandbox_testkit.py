"""Test helpers shared by the provider sandboxes' unittest suites: a sandbox as a
subprocess on a free loopback port, and an HTTP client that never raises on HTTP errors."""

import json
import re
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path


class SandboxProcess:
    """`script` run with `--port 0` and `args`; stderr (its log) goes to a temp file."""

    def __init__(self, script, name, args):
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
        )
        line = self.proc.stdout.readline()
        if not re.fullmatch(r"READY http://127\.0\.0\.1:\d+\n", line):
            self.stop()
            raise RuntimeError(f"sandbox did not start: {line!r} {self.logs()}")
        self.url = line.split()[1]

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=10)

    def logs(self):
        return Path(self.log.name).read_text(encoding="utf-8")

    def close(self):
        self.stop()
        self.proc.stdout.close()
        self.log.close()


def http(method, url, body=None, headers=None, data=None, timeout=10):
    """(status, headers, parsed body) without raising on HTTP errors."""
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, decode(response)
    except urllib.error.HTTPError as err:
        return err.code, err.headers, decode(err)


def decode(response):
    raw = response.read()
    if not raw:
        return None
    if "json" in (response.headers.get("Content-Type") or ""):
        return json.loads(raw)
    return raw.decode()

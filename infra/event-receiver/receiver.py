"""A platform's webhook receiver for the local stack: verifies telemeet's event deliveries with the
official Standard Webhooks library (standardwebhooks, PyPI), never with telemeet's own code, and
answers as a test scripts it.

    python infra/event-receiver/receiver.py --port 0 --secret whsec_...   # prints its URL first

Every POST outside /_control/ is a delivery. A verified one (any registered secret; several
signatures in one header, as during a rotation, are the library's business) is answered with
the next status of the plan (default 200), after the plan's delay, and recorded; any other is
answered 400 and recorded as rejected. One line per verified event goes to stdout: its type,
webhook-id, data.meetingId and data.version, never the body's other fields (the log stays free
of whatever a delivery might carry).

Control (JSON): POST /_control/secret {"secret"} adds a secret; POST /_control/plan
{"statuses":[500,500,200], "delay": seconds} replaces the plan (statuses are consumed one per
verified delivery; the delay applies to every delivery until the next plan); GET
/_control/deliveries lists what arrived; POST /_control/reset forgets deliveries and plan (not
the secrets); GET /_control/health. Loopback only. Stdlib HTTP server.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

HOST = "127.0.0.1"
CONTROL = "/_control/"
MAX_BODY = 1 << 20  # telemeet's bodies are a meeting resource: far below this
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class State:
    """Secrets, the answer plan and the deliveries, shared by the server's threads."""

    def __init__(self, secrets):
        self.lock = threading.Lock()
        self.secrets = [Webhook(s) for s in secrets]
        self.statuses = []
        self.delay = 0.0
        self.deliveries = []

    def add_secret(self, secret):
        webhook = Webhook(secret)  # raises on a secret that is not whsec_ + base64
        with self.lock:
            self.secrets.append(webhook)

    def verify(self, body, headers):
        """The parsed body if any secret verifies it, else None."""
        with self.lock:
            secrets = list(self.secrets)
        for webhook in secrets:
            try:
                return webhook.verify(body, headers)
            except Exception:  # the library raises more than WebhookVerificationError on junk
                continue
        return None

    def next_answer(self):
        with self.lock:
            return (self.statuses.pop(0) if self.statuses else 200), self.delay

    def record(self, entry):
        with self.lock:
            self.deliveries.append(entry)


def parse_plan(plan):
    """(statuses, delay) of a plan body, or a message naming what is wrong."""
    statuses = plan.get("statuses", [])
    if not isinstance(statuses, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 200 <= s <= 599 for s in statuses
    ):
        return "statuses must be a list of HTTP statuses (200-599)"
    delay = plan.get("delay", 0)
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 60:
        return "delay must be a number of seconds (0-60)"
    return statuses, float(delay)


class Handler(BaseHTTPRequestHandler):
    server_version = "telemeet-event-receiver"

    def log_message(self, *args):  # the default access log would print paths and addresses
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY))

    def do_GET(self):
        state = self.server.state
        if self.path == CONTROL + "deliveries":
            with state.lock:
                self.reply(200, list(state.deliveries))
        elif self.path == CONTROL + "health":
            with state.lock:
                self.reply(200, {"ok": True, "secrets": len(state.secrets), "deliveries": len(state.deliveries)})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path.startswith(CONTROL):
            self.control(self.path[len(CONTROL):], self.body())
        else:
            self.delivery(self.body())

    def control(self, route, raw):
        state = self.server.state
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            return self.reply(400, {"error": "the body must be JSON"})
        if not isinstance(payload, dict):
            return self.reply(400, {"error": "the body must be a JSON object"})
        if route == "secret":
            try:
                state.add_secret(payload.get("secret"))
            except Exception:
                return self.reply(400, {"error": "secret must be whsec_ followed by base64"})
            return self.reply(200, {"ok": True})
        if route == "plan":
            plan = parse_plan(payload)
            if isinstance(plan, str):
                return self.reply(400, {"error": plan})
            with state.lock:
                state.statuses, state.delay = plan
            return self.reply(200, {"ok": True})
        if route == "reset":
            with state.lock:
                state.statuses, state.delay, state.deliveries = [], 0.0, []
            return self.reply(200, {"ok": True})
        return self.reply(404, {"error": "not found"})

    def delivery(self, raw):
        state = self.server.state
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = {h: headers.get(h) for h in HEADERS}
        event = state.verify(raw, headers)
        if event is None:
            state.record({"rejected": True, "path": self.path, "status": 400, "headers": seen,
                          "receivedAt": time.time()})
            return self.reply(400, {"error": "not verified"})
        status, delay = state.next_answer()
        if delay:
            time.sleep(delay)
        state.record({"rejected": False, "path": self.path, "status": status, "headers": seen,
                      "body": event, "receivedAt": time.time()})
        data = event.get("data") if isinstance(event, dict) else None
        data = data if isinstance(data, dict) else {}
        print(f"event {event.get('type') if isinstance(event, dict) else None} "
              f"webhook-id={seen['webhook-id']} meetingId={data.get('meetingId')} "
              f"version={data.get('version')} answered={status}", flush=True)
        self.reply(status, {"ok": status < 300})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, state):
        super().__init__((HOST, port), Handler)
        self.state = state


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--secret", action="append", default=[],
                        help="a subscription's whsec_ secret (repeatable)")
    args = parser.parse_args(argv)
    try:
        state = State(args.secret)
    except Exception:
        parser.error("--secret must be whsec_ followed by base64")
    server = Server(args.port, state)
    print(f"listening on http://{HOST}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

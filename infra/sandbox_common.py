"""HTTP plumbing shared by telemeet's provider sandboxes (zoom-sandbox/, zoho-sandbox/).

A sandbox subclasses BaseSandbox: it names its operations (method + path template: the keys of
/__sandbox/calls and of fault rules), its fault kinds, pages and extra control routes, and
implements error_body / validate / answer / fault_reply / page. This module owns routing, the
per-request log line (method, path template, status: never values), fault-rule bookkeeping, the
control API both sandboxes share, and the loopback-only server. Stdlib only.

The sandbox scripts import it with their parent directory (infra/) put on sys.path.
"""

import argparse
import copy
import html
import ipaddress
import json
import logging
import secrets
import signal
import socket
import string
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

log = logging.getLogger("sandbox")

# Fault kinds after which the request is still processed normally; every other kind is
# answered by the sandbox's fault_reply() instead.
PROCESSING_FAULTS = {"delay", "drop_after", "hold"}
# A held request waits at most this long for POST /__sandbox/release.
HOLD_LIMIT_SECONDS = 30

CONTROL = [
    "GET /__sandbox/calls",
    "GET /__sandbox/meetings",
    "GET /__sandbox/issued",
    "GET /__sandbox/faults",
    "POST /__sandbox/faults",
    "DELETE /__sandbox/faults",
    "POST /__sandbox/reset",
    "POST /__sandbox/release",
    "GET /__sandbox/received",
]


@dataclass
class Reply:
    status: int
    body: object = None  # dict/list -> JSON, str -> HTML, None -> empty
    headers: dict = field(default_factory=dict)


@dataclass
class Call:
    """One request to a provider operation, as the operation handlers see it."""

    key: str
    params: dict  # decoded path parameters
    query: dict  # query parameters (the last value wins when repeated)
    headers: object  # email.message.Message from http.server
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else {}


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def random_digits(n):
    return "".join(secrets.choice(string.digits) for _ in range(n))


def form_params(call):
    """Query parameters, overlaid by an application/x-www-form-urlencoded body (OAuth endpoints)."""
    params = dict(call.query)
    if (call.headers.get("Content-Type") or "").lower().startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(call.body.decode("utf-8", "replace")))
    return params


def match(template_path, segments):
    """Raw path params if the path fits the template (segments are still URL-encoded). A template
    segment holds at most one {name}, optionally between a literal prefix and suffix
    ("{meetingKey}.json"); the parameter must not be empty."""
    parts = template_path.split("/")
    if len(parts) != len(segments):
        return None
    params = {}
    for part, segment in zip(parts, segments):
        if "{" in part:
            prefix, rest = part.split("{", 1)
            name, suffix = rest.split("}", 1)
            size = len(segment) - len(prefix) - len(suffix)
            if size <= 0 or not segment.startswith(prefix) or not segment.endswith(suffix):
                return None
            params[name] = segment[len(prefix) : len(prefix) + size]
        elif part != segment:
            return None
    return params


class BaseSandbox:
    """State and bookkeeping every sandbox has; subclasses fill in the provider."""

    name = "sandbox"  # log prefix and Server header
    token_operation = None  # the OAuth token endpoint's key: answered by grant(), no API auth
    title = "Sandbox"  # HTML page title
    operations = []  # operation keys
    fault_kinds = set()
    pages = {}  # route -> role passed to page()
    extra_control = []  # control routes beyond CONTROL, handled by more_control()

    def __init__(self):
        self.lock = threading.Lock()
        self.base_url = ""  # set once the port is known
        self.issued = {}  # every secret handed out or used, kept across resets (log-leak checks)
        self.meetings = {}
        self.deleted = {}
        # Held requests wait for this event; a release sets it and starts a new one.
        self.release_event = threading.Event()

    def routes(self):
        return [*self.operations, *self.pages, *CONTROL, *self.extra_control]

    def reset_bookkeeping(self):
        """Forget fault rules and counters (the caller holds self.lock)."""
        self.faults = []
        self.counts = dict.fromkeys(self.operations, 0)  # every request received
        self.succeeded = dict.fromkeys(self.operations, 0)  # 2xx answers actually sent
        self.requests = []
        self.received = []  # what each API request carried: its target and body, verbatim
        self.unrouted = []

    # -- hooks for subclasses

    def reset(self):
        with self.lock:
            self.reset_bookkeeping()

    def error_body(self, code, message):
        """The provider's error body for the sandbox's own answers (404, 405, 411, 500)."""
        raise NotImplementedError

    def path_params(self, raw_params):
        return {name: unquote(value) for name, value in raw_params.items()}

    def validate(self, call):
        """(errors, valid) for an operation request; side-effect free. valid is None where the
        operation has nothing to validate."""
        return [], None

    def answer(self, call, errors):
        """Normal processing: the token endpoint, else authentication and then the API operation."""
        if call.key == self.token_operation:
            return self.grant(call)
        return self.authenticate(call.headers) or self.api_answer(call, errors)

    def grant(self, call):
        raise NotImplementedError

    def authenticate(self, headers):
        """An error Reply unless the request carries a live access token, else None."""
        raise NotImplementedError

    def api_answer(self, call, errors):
        raise NotImplementedError

    def fault_reply(self, rule):
        raise NotImplementedError

    def page(self, route, params, query):
        raise NotImplementedError

    def fault_error(self, rule):
        """A message if a rule that passed the common checks still does not apply, else None."""
        return None

    def stored_meeting(self, meeting):
        return copy.deepcopy(meeting)

    def more_control(self, key, payload, params):
        """A control route of extra_control; params are its decoded path parameters."""
        raise NotImplementedError

    def request_context(self, call):
        """Extra fields for this request's entries in /__sandbox/received and /__sandbox/calls
        (whose token, which user), computed once the request was answered; side-effect free."""
        return {}

    # -- bookkeeping (callers hold no lock)

    def count(self, key):
        with self.lock:
            self.counts[key] += 1

    def record(self, key, status, errors, valid, fault, context=None):
        with self.lock:
            if 200 <= status < 300 and fault != "drop_after":
                self.succeeded[key] += 1
            self.requests.append(
                {"operation": key, "status": status, "valid": valid, "errors": errors, "fault": fault,
                 # when it was answered (epoch seconds), so tests can measure request rates
                 "at": time.time(), **(context or {})}
            )

    def take_fault(self, key):
        with self.lock:
            for rule in self.faults:
                if rule["operation"] == key:
                    if rule["times"] > 0:
                        rule["times"] -= 1
                        if rule["times"] == 0:
                            self.faults.remove(rule)
                    return dict(rule)
        return None

    def _issue(self, kind, value):
        """Note a secret in the issued list (the caller holds self.lock)."""
        self.issued[kind].append(value)
        return value

    # -- control API (/__sandbox/...)

    def control(self, key, body, params=None):
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return Reply(400, {"error": "body must be JSON"})
        if key == "GET /__sandbox/calls":
            with self.lock:
                return Reply(
                    200,
                    {
                        "counts": dict(self.counts),
                        "succeeded": dict(self.succeeded),
                        "invalid": sum(1 for r in self.requests if r["valid"] is False),
                        "requests": copy.deepcopy(self.requests),
                        "unrouted": list(self.unrouted),
                    },
                )
        if key == "GET /__sandbox/meetings":
            with self.lock:
                meetings = [self.stored_meeting(m) for m in self.meetings.values()]
                return Reply(200, {"meetings": meetings, "deleted": list(self.deleted)})
        if key == "GET /__sandbox/received":
            with self.lock:
                return Reply(200, {"requests": copy.deepcopy(self.received)})
        if key == "GET /__sandbox/issued":
            with self.lock:
                return Reply(200, copy.deepcopy(self.issued))
        if key == "GET /__sandbox/faults":
            with self.lock:
                return Reply(200, {"faults": copy.deepcopy(self.faults)})
        if key == "POST /__sandbox/faults":
            return self.add_fault(payload)
        if key == "DELETE /__sandbox/faults":
            with self.lock:
                self.faults.clear()
            return Reply(204)
        if key == "POST /__sandbox/reset":
            self.reset()
            return Reply(204)
        if key == "POST /__sandbox/release":
            with self.lock:
                released, self.release_event = self.release_event, threading.Event()
            released.set()
            return Reply(204)
        return self.more_control(key, payload, params or {})

    def add_fault(self, rule):
        def bad(message):
            return Reply(400, {"error": message})

        if not isinstance(rule, dict):
            return bad("body must be a JSON object")
        if rule.get("operation") not in self.operations:
            return bad(f"operation must be one of {self.operations}")
        kind = rule.get("kind")
        if kind not in self.fault_kinds:
            return bad(f"kind must be one of {sorted(self.fault_kinds)}")
        times = rule.setdefault("times", 1)
        if not is_int(times) or times < -1 or times == 0:
            return bad("times must be a positive integer or -1 (until cleared)")
        if kind == "status":
            status = rule.setdefault("status", 500)
            if not is_int(status) or not 200 <= status <= 599:
                return bad("status must be an integer between 200 and 599")
        if kind == "delay" and not (isinstance(rule.get("ms"), (int, float)) and rule["ms"] >= 0):
            return bad("delay needs ms >= 0")
        if kind == "rate_limit" and rule.setdefault("retryAfter", "1") is not None:
            rule["retryAfter"] = str(rule["retryAfter"])  # null: a 429 without Retry-After
        problem = self.fault_error(rule)
        if problem:
            return bad(problem)
        with self.lock:
            self.faults.append(rule)
        return Reply(201, {"fault": rule})


# ---------------------------------------------------------------- HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    timeout = 60  # idle keep-alive connections are dropped after this many seconds

    def do_request(self):
        sandbox = self.server.sandbox
        path, _, query = self.path.partition("?")
        segments = path.split("/")
        allowed = []
        for route in sandbox.routes():
            method, template = route.split(" ", 1)
            params = match(template, segments)
            if params is None:
                continue
            if method != self.command:
                allowed.append(method)
                continue
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self.close_connection = True
                return self.send(template, Reply(411, sandbox.error_body(411, "Length Required")))
            try:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if route in sandbox.operations:
                    return self.operation(route, params, dict(parse_qsl(query)), body)
                if route in sandbox.pages:
                    reply = sandbox.page(route, params, dict(parse_qsl(query)))
                else:
                    reply = sandbox.control(route, body, {k: unquote(v) for k, v in params.items()})
            except Exception as exc:  # noqa: BLE001 - answer like the provider, log without values
                log.error("%s %s failed: %s\n%s", self.command, template, type(exc).__name__,
                          "".join(traceback.format_tb(exc.__traceback__)).rstrip())
                reply = Reply(500, sandbox.error_body(500, "Internal server error"))
            return self.send(template, reply)
        status = 405 if allowed else 404
        with sandbox.lock:
            sandbox.unrouted.append({"method": self.command, "path": path, "status": status})
        if allowed:
            return self.send("(unrouted)", Reply(405, sandbox.error_body(405, "Method Not Allowed"),
                                                 {"Allow": ", ".join(allowed)}))
        return self.send("(unrouted)", Reply(404, sandbox.error_body(404, "Not found")))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_request

    def operation(self, key, raw_params, query, body):
        sandbox = self.server.sandbox
        sandbox.count(key)
        # Verbatim, so tests can prove what never reaches a provider (names, emails).
        received = {"operation": key, "target": self.path, "body": body.decode("utf-8", "replace")}
        with sandbox.lock:
            sandbox.received.append(received)
        call = Call(key, sandbox.path_params(raw_params), query, self.headers, body)
        # Validation is side-effect free, so it is recorded even when a fault answers instead.
        errors, valid = sandbox.validate(call)
        fault = sandbox.take_fault(key)
        kind = fault["kind"] if fault else None
        if kind == "delay":
            time.sleep(fault["ms"] / 1000)
        if kind == "hold":
            # Until the test releases it (a slow provider whose slowness the test controls).
            with sandbox.lock:
                held = sandbox.release_event
            held.wait(HOLD_LIMIT_SECONDS)
        if kind and kind not in PROCESSING_FAULTS:
            reply = sandbox.fault_reply(fault)
        else:
            reply = sandbox.answer(call, errors)
        context = sandbox.request_context(call)
        with sandbox.lock:
            received.update(context)
        sandbox.record(key, reply.status, errors, valid, kind, context)
        if kind == "drop_after":  # the work is done, but the answer is lost
            self.close_connection = True
            log.info("%s %s (dropped, fault=drop_after)", key, reply.status)
            return
        self.send(key.split(" ", 1)[1], reply, f" fault={kind}" if kind else "")

    def send(self, template, reply, note=""):
        if reply.body is None:
            data, content_type = b"", None
        elif isinstance(reply.body, str):
            title = self.server.sandbox.title
            data = f"<!doctype html><title>{title}</title><p>{html.escape(reply.body)}</p>\n".encode()
            content_type = "text/html; charset=utf-8"
        else:
            data, content_type = json.dumps(reply.body).encode(), "application/json;charset=UTF-8"
        self.send_response(reply.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        log.info("%s %s %s%s", self.command, template, reply.status, note)

    def version_string(self):
        return self.server.sandbox.name

    # http.server's own log lines carry the raw request line (query strings, tokens): drop them.
    def log_message(self, format, *args):
        pass

    def log_error(self, format, *args):
        log.info("rejected a malformed or unsupported request")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: many clients connect at once in concurrency tests

    def __init__(self, address, sandbox):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        log.info("connection error: %s", type(sys.exc_info()[1]).__name__)


def argument_parser(description):
    """An argparse parser with the options every sandbox has: --host (loopback) and --port."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port chosen by the OS")
    return parser


def check_loopback(parser, args):
    """args, once args.host is known to be a loopback IP; else the parser exits with status 2."""
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        parser.error(f"--host must be a loopback IP address such as 127.0.0.1, not {args.host!r}")
    return args


def start_logging(name):
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=f"[{name}] %(message)s")


def serve(sandbox, host, port):
    """Listen, print `READY <base url>`, serve until SIGTERM/SIGINT, then stop cleanly."""
    server = Server((host, port), sandbox)
    host, port = server.server_address[:2]
    sandbox.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {sandbox.base_url}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    log.info("stopped")

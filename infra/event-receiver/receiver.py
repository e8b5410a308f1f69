"""Temporary stand-in (the lead's; replaced by the full receiver): verifies with standardwebhooks."""
import argparse, json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from standardwebhooks.webhooks import Webhook

state = {"secrets": [], "plan": [], "deliveries": []}
lock = threading.Lock()

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _json(self, code, obj):
        b = json.dumps(obj).encode(); self.send_response(code)
        self.send_header("content-type", "application/json"); self.send_header("content-length", str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        with lock: self._json(200, state["deliveries"])
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/_control/secret":
            with lock: state["secrets"].append(json.loads(body)["secret"])
            return self._json(200, {})
        if self.path == "/_control/plan":
            with lock: state["plan"] = list(json.loads(body)["statuses"])
            return self._json(200, {})
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = False
        for s in state["secrets"]:
            try:
                Webhook(s).verify(body, headers); verified = True; break
            except Exception:
                pass
        with lock:
            status = state["plan"].pop(0) if state["plan"] else 200
            state["deliveries"].append({"verified": verified and 200 <= status < 300, "status": status,
                "headers": {k: headers.get(k) for k in ("webhook-id", "webhook-timestamp", "webhook-signature")},
                "body": json.loads(body) if verified else None})
        self._json(status if verified else 400, {})

p = argparse.ArgumentParser(); p.add_argument("--port", type=int, default=0); p.add_argument("--secret", action="append", default=[])
a = p.parse_args(); state["secrets"] = a.secret
srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
print(f"listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
srv.serve_forever()

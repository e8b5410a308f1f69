"""The event receiver, run as a process: deliveries signed with the standardwebhooks library itself
(as telemeet's must verify), the answer plan, rejection, rotation, and what it prints."""

import base64
import json
import os
import queue
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

from standardwebhooks.webhooks import Webhook

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "whsec_" + base64.b64encode(b"telemeet-receiver-test-secret-01").decode()
OTHER = "whsec_" + base64.b64encode(b"telemeet-receiver-test-secret-02").decode()


def event(meeting="mtg_1", version=1, kind="meeting.created", **data):
    return {"type": kind, "timestamp": "2026-11-21T10:00:00.000Z",
            "data": {"meetingId": meeting, "version": version, "orgId": "clinic-1", **data}}


def signed(body, secrets=(SECRET,), msg_id="msg_1", at=None):
    """Standard Webhooks headers for `body`, one v1 signature per secret (space separated)."""
    at = at or datetime.now(timezone.utc)
    signatures = " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures, "content-type": "application/json"}


class Receiver:
    """receiver.py on a free port; stdout lines collected as they come."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "receiver.py"), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        first = self.proc.stdout.readline().strip()
        if not first.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"receiver did not start: {first!r} {self.proc.stderr.read()}")
        self.url = first.split(" ")[-1]
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        except (ValueError, OSError):  # stdout closed by stop()
            pass

    def line(self, timeout=5):
        return self.lines.get(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        self.reader.join(timeout=5)  # the rest of stdout, up to its end
        self.proc.stdout.close()
        self.proc.stderr.close()

    def post(self, path, body, headers=None):
        data = body if isinstance(body, bytes) else body.encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def control(self, route, payload):
        return self.post("/_control/" + route, json.dumps(payload), {"content-type": "application/json"})

    def get(self, route):
        with urllib.request.urlopen(self.url + "/_control/" + route, timeout=10) as r:
            return json.loads(r.read())

    def deliver(self, body, **kw):
        return self.post("/events", body, signed(body, **kw))


class ReceiverTest(unittest.TestCase):
    def setUp(self):
        self.receiver = Receiver("--secret", SECRET)
        self.addCleanup(self.receiver.stop)

    def test_a_signed_delivery_is_verified_recorded_and_printed_by_ids_only(self):
        body = json.dumps(event(version=3, topic="Video consultation", hostUserId="dr-7"))
        self.assertEqual(self.receiver.deliver(body, msg_id="msg_abc"), (200, {"ok": True}))
        [got] = self.receiver.get("deliveries")
        self.assertEqual((got["rejected"], got["status"], got["path"]), (False, 200, "/events"))
        self.assertEqual(got["headers"]["webhook-id"], "msg_abc")
        self.assertTrue(got["headers"]["webhook-signature"].startswith("v1,"))
        self.assertEqual(got["body"], json.loads(body))
        line = self.receiver.line()
        self.assertEqual(line, "event meeting.created webhook-id=msg_abc meetingId=mtg_1 version=3 answered=200")
        self.assertNotIn("consultation", line)
        self.assertNotIn("dr-7", line)

    def test_unverified_deliveries_are_400_and_recorded_as_rejected_without_using_the_plan(self):
        self.receiver.control("plan", {"statuses": [500]})
        body = json.dumps(event())
        stale = datetime.now(timezone.utc) - timedelta(minutes=10)
        tampered = signed(body)
        cases = [
            ("wrong secret", body, signed(body, secrets=(OTHER,))),
            ("stale timestamp", body, signed(body, at=stale)),
            ("body changed", body.replace("mtg_1", "mtg_2"), tampered),
            ("no headers", body, {}),
            ("junk signature", body, {**tampered, "webhook-signature": "garbage"}),
        ]
        for what, sent, headers in cases:
            with self.subTest(what):
                self.assertEqual(self.receiver.post("/events", sent, headers)[0], 400)
        deliveries = self.receiver.get("deliveries")
        self.assertEqual(len(deliveries), len(cases))
        self.assertTrue(all(d["rejected"] and "body" not in d for d in deliveries))
        # The plan's 500 is still there for the first verified delivery.
        self.assertEqual(self.receiver.deliver(body)[0], 500)
        self.assertTrue(self.receiver.line().endswith("answered=500"), "rejected ones print nothing")

    def test_the_plan_is_consumed_per_delivery_then_200(self):
        self.assertEqual(self.receiver.control("plan", {"statuses": [500, 500, 410]}), (200, {"ok": True}))
        body = json.dumps(event())
        statuses = [self.receiver.deliver(body, msg_id="msg_same")[0] for _ in range(5)]
        self.assertEqual(statuses, [500, 500, 410, 200, 200])
        ids = {d["headers"]["webhook-id"] for d in self.receiver.get("deliveries")}
        self.assertEqual(ids, {"msg_same"})
        for bad in ({"statuses": [99]}, {"statuses": "500"}, {"delay": -1}, {"delay": True}):
            self.assertEqual(self.receiver.control("plan", bad)[0], 400, bad)

    def test_a_delay_makes_it_slow(self):
        self.receiver.control("plan", {"delay": 0.6})
        start = time.monotonic()
        self.assertEqual(self.receiver.deliver(json.dumps(event()))[0], 200)
        self.assertGreaterEqual(time.monotonic() - start, 0.6)

    def test_secrets_registered_at_runtime_and_rotation_signatures(self):
        body = json.dumps(event())
        self.assertEqual(self.receiver.deliver(body, secrets=(OTHER,))[0], 400)
        self.assertEqual(self.receiver.control("secret", {"secret": OTHER}), (200, {"ok": True}))
        self.assertEqual(self.receiver.deliver(body, secrets=(OTHER,))[0], 200)
        # During a rotation telemeet signs with both secrets in one header.
        fresh = Receiver()
        self.addCleanup(fresh.stop)
        self.assertEqual(fresh.deliver(body, secrets=(SECRET, OTHER))[0], 400, "no secret yet")
        fresh.control("secret", {"secret": OTHER})
        self.assertEqual(fresh.deliver(body, secrets=(SECRET, OTHER))[0], 200)
        for bad in ({"secret": "whsec_"}, {"secret": 42}, {}):
            self.assertEqual(self.receiver.control("secret", bad)[0], 400, bad)

    def test_health_reset_and_no_secret_is_ever_shown(self):
        self.receiver.deliver(json.dumps(event()))
        health = self.receiver.get("health")
        self.assertEqual(health, {"ok": True, "secrets": 1, "deliveries": 1})
        self.receiver.control("plan", {"statuses": [503]})
        self.assertEqual(self.receiver.control("reset", {}), (200, {"ok": True}))
        self.assertEqual(self.receiver.get("deliveries"), [])
        self.assertEqual(self.receiver.deliver(json.dumps(event()))[0], 200, "plan forgotten too")
        shown = json.dumps([self.receiver.get("deliveries"), self.receiver.get("health")])
        self.receiver.stop()
        secret_b64 = SECRET.removeprefix("whsec_")
        self.assertNotIn(secret_b64, shown)
        while not self.receiver.lines.empty():
            self.assertNotIn(secret_b64, self.receiver.lines.get())

    def test_it_listens_on_loopback_only_and_refuses_a_bad_secret_flag(self):
        self.assertTrue(self.receiver.url.startswith("http://127.0.0.1:"))
        bad = subprocess.run([sys.executable, os.path.join(HERE, "receiver.py"), "--secret", "whsec_%%%"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(bad.returncode, 2)
        self.assertNotIn("%%%", bad.stderr)


if __name__ == "__main__":
    unittest.main()

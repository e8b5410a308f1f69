"""Black-box tests of the Zoom sandbox: each test class runs sandbox.py as a subprocess on a
free loopback port and talks to it over HTTP.

    .venv/bin/python -m unittest discover -s infra/zoom-sandbox -p 'test_*.py'
"""

import base64
import email.utils
import hashlib
import hmac
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # infra/: sandbox_testkit
from sandbox_testkit import SandboxProcess, http  # noqa: E402
SANDBOX = HERE / "sandbox.py"
SPEC = json.loads((HERE / "spec" / "zoom-meetings-subset.json").read_text(encoding="utf-8"))
ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET = "ACC", "CID", "CSECRET"
WEBHOOK_SECRET = "Wh-secret_token-4242"

CREATE = "POST /v2/users/{userId}/meetings"
LIST = "GET /v2/users/{userId}/meetings"
GET = "GET /v2/meetings/{meetingId}"
UPDATE = "PATCH /v2/meetings/{meetingId}"
DELETE = "DELETE /v2/meetings/{meetingId}"
STATUS = "PUT /v2/meetings/{meetingId}/status"
OAUTH = "POST /oauth/token"


class Sandbox(SandboxProcess):
    """sandbox.py as a subprocess; stderr (its log) goes to a temp file."""

    def __init__(self, *extra_args):
        super().__init__(SANDBOX, "zoom-sandbox", [
            "--account-id", ACCOUNT_ID,
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, *extra_args])


def basic(client_id=CLIENT_ID, client_secret=CLIENT_SECRET):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()}


def response_schema(path, method, status):
    return SPEC["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]


def meeting_body(**overrides):
    body = {
        "topic": "Video consultation",
        "type": 2,
        "start_time": "2030-01-01T10:00:00Z",
        "duration": 30,
        "timezone": "Europe/Berlin",
        "password": "Abc123",
        "settings": {"join_before_host": False, "waiting_room": True, "approval_type": 2},
    }
    body.update(overrides)
    return body


class SandboxTestCase(unittest.TestCase):
    """One sandbox process per class, reset before every test."""

    extra_args = ()

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox(*cls.extra_args)
        cls.url = cls.sandbox.url

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()

    def setUp(self):
        self.assertEqual(self.control("POST", "reset")[0], 204)
        self.token = self.get_token()

    def control(self, method, name, body=None):
        return http(method, f"{self.url}/__sandbox/{name}", body)

    def get_token(self):
        status, _, body = http(
            "POST", f"{self.url}/oauth/token?grant_type=account_credentials&account_id={ACCOUNT_ID}", headers=basic()
        )
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def api(self, method, path, body=None, token=None, **kwargs):
        auth = {"Authorization": f"Bearer {token or self.token}"}
        return http(method, f"{self.url}/v2{path}", body, headers=auth, **kwargs)

    def create(self, **overrides):
        status, _, body = self.api("POST", "/users/me/meetings", meeting_body(**overrides))
        self.assertEqual(status, 201, body)
        return body

    def fault(self, operation, kind, **options):
        status, _, body = self.control("POST", "faults", {"operation": operation, "kind": kind, **options})
        self.assertEqual(status, 201, body)

    def calls(self):
        return self.control("GET", "calls")[2]

    def stored_meetings(self):
        return self.control("GET", "meetings")[2]

    def assertSchema(self, instance, schema):
        self.assertNotIn("$ref", json.dumps(schema))  # plain schema check below cannot follow refs
        OAS30ReadValidator(schema, format_checker=oas30_format_checker).validate(instance)

    def assertZoomError(self, response, status, code, message=None):
        got_status, _, body = response
        self.assertEqual(got_status, status, body)
        self.assertEqual(body["code"], code, body)
        if message is not None:
            self.assertEqual(body["message"], message)


class OAuthTest(SandboxTestCase):
    def test_token_from_query(self):
        status, headers, body = http(
            "POST", f"{self.url}/oauth/token?grant_type=account_credentials&account_id=ACC", headers=basic()
        )
        self.assertEqual(status, 200)
        self.assertEqual(
            {k: v for k, v in body.items() if k != "access_token"},
            {"token_type": "bearer", "expires_in": 3600, "scope": "meeting:read:admin meeting:write:admin",
             "api_url": self.url},
        )
        self.assertGreater(len(body["access_token"]), 30)
        self.assertIn(body["access_token"], self.control("GET", "issued")[2]["accessTokens"])

    def test_token_from_form_body(self):
        status, _, body = http(
            "POST", f"{self.url}/oauth/token", data=b"grant_type=account_credentials&account_id=ACC",
            headers={**basic(), "Content-Type": "application/x-www-form-urlencoded"},
        )
        self.assertEqual(status, 200, body)
        self.assertNotEqual(body["access_token"], self.token)

    def test_errors(self):
        good = "grant_type=account_credentials&account_id=ACC"
        cases = [
            (basic(client_secret="wrong"), good, "invalid_client", "Invalid client_id or client_secret"),
            (basic(client_id="other"), good, "invalid_client", "Invalid client_id or client_secret"),
            ({}, good, "invalid_client", "Invalid client_id or client_secret"),
            (basic(), "grant_type=account_credentials&account_id=OTHER", "invalid_request", "Invalid account_id"),
            (basic(), "grant_type=client_credentials&account_id=ACC", "unsupported_grant_type", "unsupported grant type"),
            (basic(), "account_id=ACC", "unsupported_grant_type", "unsupported grant type"),
        ]
        for headers, query, error, reason in cases:
            with self.subTest(query=query, headers=headers):
                status, _, body = http("POST", f"{self.url}/oauth/token?{query}", headers=headers)
                self.assertEqual((status, body), (400, {"reason": reason, "error": error}))

    def test_bearer_required(self):
        invalid = (401, 124, "Invalid access token.")
        self.assertZoomError(http("GET", f"{self.url}/v2/meetings/12345678901"), *invalid)
        self.assertZoomError(self.api("GET", "/meetings/12345678901", token="not-a-token"), *invalid)
        self.assertZoomError(
            http("GET", f"{self.url}/v2/meetings/12345678901", headers=basic()), *invalid
        )

    def test_reset_revokes_tokens_but_keeps_issued_list(self):
        self.control("POST", "reset")
        self.assertZoomError(self.api("GET", "/meetings/12345678901"), 401, 124, "Invalid access token.")
        self.assertIn(self.token, self.control("GET", "issued")[2]["accessTokens"])


class ExpiryTest(SandboxTestCase):
    extra_args = ("--token-ttl", "1")

    def test_token_expires_in_real_time(self):
        status, _, body = http(
            "POST", f"{self.url}/oauth/token?grant_type=account_credentials&account_id=ACC", headers=basic()
        )
        self.assertEqual(body["expires_in"], 1)
        time.sleep(1.2)
        self.assertZoomError(
            self.api("GET", "/meetings/12345678901", token=body["access_token"]), 401, 124, "Access token is expired."
        )


class MeetingsTest(SandboxTestCase):
    def test_create_answers_like_zoom(self):
        status, headers, body = self.api("POST", "/users/me/meetings", meeting_body(start_time="2030-01-01T12:00:00+02:00"))
        self.assertEqual(status, 201, body)
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        self.assertSchema(body, response_schema("/users/{userId}/meetings", "post", "201"))
        self.assertGreater(body["id"], 2**32)
        self.assertEqual(len(str(body["id"])), 11)
        self.assertEqual(len(body["uuid"]), 24)
        self.assertEqual(len(base64.b64decode(body["uuid"])), 16)
        self.assertEqual(body["start_time"], "2030-01-01T10:00:00Z")
        self.assertEqual((body["status"], body["host_email"], body["password"]), ("waiting", "host@sandbox.invalid", "Abc123"))
        self.assertRegex(body["start_url"], rf"^{re.escape(self.url)}/s/{body['id']}\?zak=[\w-]+$")
        self.assertEqual(body["join_url"], f"{self.url}/j/{body['id']}?pwd={body['encrypted_password']}")
        self.assertEqual(body["settings"]["waiting_room"], True)
        for key in ("host_video", "participant_video", "mute_upon_entry", "join_before_host", "approval_type"):
            self.assertIn(key, body["settings"])
        self.assertIs(body["pre_schedule"], False)
        self.assertEqual(self.stored_meetings()["meetings"], [body])
        last = self.calls()["requests"][-1]
        self.assertIsInstance(last.pop("at"), float)  # answered at (epoch seconds)
        self.assertEqual(last, {"operation": CREATE, "status": 201, "valid": True, "errors": [], "fault": None,
                                "accountId": ACCOUNT_ID, "userId": body["host_id"]})

    def test_create_accepts_every_documented_user_id_form(self):
        host = self.control("GET", "accounts")[2]["accounts"][0]["users"][0]
        self.assertEqual(host["email"], "host@sandbox.invalid")
        for user_id in ("me", "HOST@sandbox.invalid", host["email"], host["id"]):
            with self.subTest(user_id=user_id):
                status, _, body = self.api("POST", f"/users/{urllib.parse.quote(user_id)}/meetings", meeting_body())
                self.assertEqual(status, 201, body)
                self.assertEqual((body["host_id"], body["host_email"]), (host["id"], host["email"]))

    def test_create_generates_a_password_when_none_is_given(self):
        body = meeting_body()
        del body["password"]
        created = self.api("POST", "/users/me/meetings", body)[2]
        self.assertRegex(created["password"], r"^[A-Za-z0-9]{10}$")
        self.assertIn(created["password"], self.control("GET", "issued")[2]["passwords"])

    def test_create_invalid_is_rejected_with_zoom_validation_body(self):
        cases = [
            ({"password": "12345678901"}, "password"),
            ({"type": 7}, "type"),
            ({"start_time": "not a time"}, "start_time"),
            ({"settings": {"approval_type": 9}}, "settings.approval_type"),
            ({"agenda": None}, "agenda"),
        ]
        for override, field in cases:
            with self.subTest(field=field):
                status, _, body = self.api("POST", "/users/me/meetings", meeting_body(**override))
                self.assertEqual(status, 400)
                self.assertEqual((body["code"], body["message"]), (300, "Validation Failed."))
                self.assertEqual([e["field"] for e in body["errors"]], [field])
                self.assertNotIn("12345678901", json.dumps(body))  # values are never echoed
        calls = self.calls()
        self.assertEqual(calls["invalid"], len(cases))
        self.assertEqual(calls["succeeded"][CREATE], 0)
        self.assertFalse(calls["requests"][-1]["valid"])
        self.assertEqual(self.stored_meetings()["meetings"], [])

    def test_create_needs_a_json_body(self):
        auth = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.url}/v2/users/me/meetings"
        cases = [
            (b"{}", "text/plain", "Content-Type"),
            (b'{"topic": ', "application/json", "body"),
            (None, None, "body"),
        ]
        for data, content_type, field in cases:
            with self.subTest(field=field, content_type=content_type):
                headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
                status, _, body = http("POST", url, data=data, headers=headers)
                self.assertEqual((status, body["code"]), (400, 300))
                self.assertEqual(body["errors"][0]["field"], field)

    def test_get_returns_a_fresh_start_url_each_time(self):
        created = self.create()
        first = self.api("GET", f"/meetings/{created['id']}")
        second = self.api("GET", f"/meetings/{created['id']}")
        self.assertEqual((first[0], second[0]), (200, 200))
        self.assertSchema(first[2], response_schema("/meetings/{meetingId}", "get", "200"))
        zaks = {created["start_url"], first[2]["start_url"], second[2]["start_url"]}
        self.assertEqual(len(zaks), 3)
        self.assertEqual(first[2]["join_url"], created["join_url"])
        self.assertEqual(first[2]["id"], created["id"])

    def test_get_rejects_bad_ids(self):
        self.assertZoomError(self.api("GET", "/meetings/12345678901"), 404, 3001, "Meeting does not exist: 12345678901.")
        status, _, body = self.api("GET", "/meetings/99999999999999999999")  # beyond int64
        self.assertEqual((status, body["errors"][0]["field"]), (400, "meetingId"))

    def test_meeting_uuid_in_path_must_be_double_encoded_when_zoom_says_so(self):
        for mode, check in (("slash", lambda u: u.startswith("/")), ("double-slash", lambda u: "//" in u)):
            with self.subTest(mode=mode):
                self.assertEqual(self.control("POST", "uuid-mode", {"mode": mode})[0], 200)
                created = self.create()
                self.assertTrue(check(created["uuid"]), created["uuid"])
                once = urllib.parse.quote(created["uuid"], safe="")
                status, _, body = self.api("GET", f"/meetings/{urllib.parse.quote(once, safe='')}")
                self.assertEqual((status, body["id"]), (200, created["id"]))
                status, _, body = self.api("GET", f"/meetings/{once}")
                self.assertEqual((status, body["code"], body["errors"][0]["field"]), (400, 300, "meetingId"))
        self.control("POST", "uuid-mode", {"mode": "normal"})
        created = self.create()
        if not (created["uuid"].startswith("/") or "//" in created["uuid"]):
            status, _, body = self.api("GET", f"/meetings/{urllib.parse.quote(created['uuid'], safe='')}")
            self.assertEqual((status, body["id"]), (200, created["id"]))
        self.assertEqual(self.control("POST", "uuid-mode", {"mode": "weird"})[0], 400)

    def test_patch_updates_and_answers_204(self):
        created = self.create()
        status, _, body = self.api("PATCH", f"/meetings/{created['id']}", {
            "topic": "Follow-up", "start_time": "2030-02-01T09:30:00Z", "duration": 45,
            "timezone": "UTC", "agenda": "Review", "settings": {"host_video": True},
        })
        self.assertEqual((status, body), (204, None))
        got = self.api("GET", f"/meetings/{created['id']}")[2]
        self.assertEqual(
            (got["topic"], got["start_time"], got["duration"], got["timezone"], got["agenda"]),
            ("Follow-up", "2030-02-01T09:30:00Z", 45, "UTC", "Review"),
        )
        self.assertEqual((got["settings"]["host_video"], got["settings"]["waiting_room"]), (True, True))
        self.assertZoomError(self.api("PATCH", "/meetings/12345678901", {"topic": "x"}), 404, 3001)
        self.assertZoomError(self.api("PATCH", f"/meetings/{created['id']}", {"duration": "long"}), 400, 300)

    def test_delete(self):
        created = self.create()
        self.assertEqual(self.api("DELETE", f"/meetings/{created['id']}")[:3:2], (204, None))
        missing = f"Meeting does not exist: {created['id']}."
        self.assertZoomError(self.api("GET", f"/meetings/{created['id']}"), 404, 3001, missing)
        self.assertZoomError(self.api("DELETE", f"/meetings/{created['id']}"), 404, 3001, missing)
        self.assertZoomError(self.api("DELETE", "/meetings/12345678901"), 404, 3001, "Meeting does not exist: 12345678901.")
        self.assertEqual(self.stored_meetings(), {"meetings": [], "deleted": [created["id"]]})

    def test_start_and_join_pages_and_status_lifecycle(self):
        created = self.create()
        meeting_path = f"/meetings/{created['id']}"
        status, headers, page = http("GET", created["join_url"])
        self.assertEqual(status, 200)
        self.assertIn(f"Zoom sandbox: join page for meeting {created['id']}", page)
        self.assertEqual(http("GET", f"{self.url}/j/{created['id']}?pwd=wrong")[0], 403)
        self.assertEqual(http("GET", f"{self.url}/s/{created['id']}?zak=forged")[0], 403)

        status, headers, page = http("GET", created["start_url"])  # the host starts the meeting
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(f"Zoom sandbox: host start page for meeting {created['id']}", page)
        self.assertNotIn(created["start_url"].split("zak=")[1], page)
        self.assertEqual(self.stored_meetings()["meetings"][0]["status"], "started")
        live = self.api("GET", "/users/me/meetings?type=live")[2]
        self.assertEqual([m["id"] for m in live["meetings"]], [created["id"]])
        self.assertZoomError(
            self.api("DELETE", meeting_path), 400, 3002, "Sorry, you cannot delete this meeting since it is in progress."
        )

        self.assertEqual(self.api("PUT", f"{meeting_path}/status", {"action": "end"})[0], 204)
        self.assertEqual(self.api("GET", meeting_path)[2]["status"], "finished")
        self.assertEqual(self.api("DELETE", meeting_path)[0], 204)
        self.assertEqual(self.api("PUT", f"{meeting_path}/status", {"action": "recover"})[0], 204)
        self.assertEqual(self.api("GET", meeting_path)[2]["status"], "waiting")
        self.assertZoomError(self.api("PUT", "/meetings/12345678901/status", {"action": "end"}), 404, 3001)
        self.assertZoomError(self.api("PUT", f"{meeting_path}/status", {"action": "stop"}), 400, 300)
        self.assertZoomError(self.api("PUT", f"{meeting_path}/status"), 400, 300)
        self.assertEqual(http("GET", f"{self.url}/s/12345678901")[0], 404)

    def test_list_paginates(self):
        created = [self.create(start_time=f"2030-01-0{day}T10:00:00Z", agenda="a" * 300) for day in range(1, 6)]
        seen, token, pages = [], "", 0
        while True:
            query = urllib.parse.urlencode({"type": "upcoming", "page_size": 2, "next_page_token": token})
            status, _, body = self.api("GET", f"/users/me/meetings?{query}")
            self.assertEqual(status, 200, body)
            self.assertSchema(body, response_schema("/users/{userId}/meetings", "get", "200"))
            self.assertEqual((body["page_size"], body["total_records"]), (2, 5))
            self.assertTrue(all(len(m["agenda"]) == 250 for m in body["meetings"]))
            self.assertTrue(all("start_url" not in m for m in body["meetings"]))
            seen += [m["id"] for m in body["meetings"]]
            pages += 1
            token = body["next_page_token"]
            if not token:
                break
        self.assertEqual((pages, seen), (3, [m["id"] for m in created]))
        self.assertEqual(self.api("GET", "/users/me/meetings?type=previous_meetings")[2]["total_records"], 0)

    def test_list_validates_query(self):
        for query, field in (("page_size=301", "page_size"), ("type=bogus", "type"), ("page_size=many", "page_size")):
            with self.subTest(query=query):
                status, _, body = self.api("GET", f"/users/me/meetings?{query}")
                self.assertEqual((status, body["code"], body["errors"][0]["field"]), (400, 300, field))
        self.assertZoomError(self.api("GET", "/users/me/meetings?next_page_token=forged"), 400, 300)

    def test_unknown_routes_and_methods(self):
        self.assertEqual(http("GET", f"{self.url}/v2/webinars/1")[::2], (404, {"code": 404, "message": "Not found"}))
        status, headers, body = self.api("PUT", "/meetings/12345678901")
        self.assertEqual((status, body["code"]), (405, 405))
        self.assertIn("PATCH", headers["Allow"])
        self.assertEqual(http("GET", f"{self.url}/__sandbox/nothing")[0], 404)
        self.assertEqual(self.calls()["unrouted"][0], {"method": "GET", "path": "/v2/webinars/1", "status": 404})

    def test_counters(self):
        created = self.create()
        self.api("GET", f"/meetings/{created['id']}")
        self.api("GET", "/meetings/12345678901")
        self.api("POST", "/users/me/meetings", meeting_body(type=7))
        self.fault(DELETE, "status", status=503)
        self.api("DELETE", f"/meetings/{created['id']}")
        calls = self.calls()
        self.assertEqual(calls["counts"], {OAUTH: 1, CREATE: 2, LIST: 0, GET: 2, UPDATE: 0, DELETE: 1, STATUS: 0})
        self.assertEqual(calls["succeeded"], {OAUTH: 1, CREATE: 1, LIST: 0, GET: 1, UPDATE: 0, DELETE: 0, STATUS: 0})
        self.assertEqual(calls["invalid"], 1)
        self.assertEqual(
            [(r["operation"], r["status"], r["valid"], r["fault"]) for r in calls["requests"]],
            [(OAUTH, 200, None, None), (CREATE, 201, True, None), (GET, 200, True, None), (GET, 404, True, None),
             (CREATE, 400, False, None), (DELETE, 503, True, "status")],
        )

    def test_concurrent_creates(self):
        def create(i):
            return self.api("POST", "/users/me/meetings", meeting_body(topic=f"t{i}"), timeout=30)

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(create, range(50)))
        self.assertEqual([status for status, _, _ in results], [201] * 50)
        self.assertEqual(len({body["id"] for _, _, body in results}), 50)
        self.assertEqual(len({body["uuid"] for _, _, body in results}), 50)
        self.assertEqual(len(self.stored_meetings()["meetings"]), 50)
        self.assertEqual(self.calls()["succeeded"][CREATE], 50)

        ids = [body["id"] for _, _, body in results]
        with ThreadPoolExecutor(max_workers=100) as pool:
            reads = list(pool.map(lambda i: self.api("GET", f"/meetings/{ids[i % 50]}", timeout=30)[0], range(100)))
        self.assertEqual(reads, [200] * 100)


class FaultsTest(SandboxTestCase):
    def test_status_fault_default_and_custom_body(self):
        self.fault(CREATE, "status")
        self.assertEqual(self.api("POST", "/users/me/meetings", meeting_body())[::2],
                         (500, {"code": 500, "message": "Internal server error"}))
        self.fault(CREATE, "status", status=503, body={"code": 503, "message": "busy"})
        self.assertEqual(self.api("POST", "/users/me/meetings", meeting_body())[::2], (503, {"code": 503, "message": "busy"}))
        self.assertEqual(self.stored_meetings()["meetings"], [])  # faulted requests have no effect
        self.create()  # rules are used up
        calls = self.calls()
        self.assertEqual((calls["counts"][CREATE], calls["succeeded"][CREATE]), (3, 1))

    def test_times_and_clearing(self):
        self.fault(GET, "status", status=502, times=2)
        statuses = [self.api("GET", "/meetings/12345678901")[0] for _ in range(3)]
        self.assertEqual(statuses, [502, 502, 404])
        self.fault(GET, "status", status=502, times=-1)
        self.assertEqual([self.api("GET", "/meetings/12345678901")[0] for _ in range(3)], [502] * 3)
        self.assertEqual(len(self.control("GET", "faults")[2]["faults"]), 1)
        self.assertEqual(self.control("DELETE", "faults")[0], 204)
        self.assertEqual(self.api("GET", "/meetings/12345678901")[0], 404)

    def test_delay(self):
        self.fault(CREATE, "delay", ms=700)
        started = time.monotonic()
        self.create()
        self.assertGreaterEqual(time.monotonic() - started, 0.7)
        self.fault(CREATE, "delay", ms=1500)
        with self.assertRaises((TimeoutError, urllib.error.URLError)):
            self.api("POST", "/users/me/meetings", meeting_body(), timeout=0.3)
        # The sandbox still completes the request; wait so it cannot land in the next test.
        deadline = time.monotonic() + 10
        while len(self.calls()["requests"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([r["status"] for r in self.calls()["requests"][1:]], [201, 201])
        self.assertEqual(len(self.stored_meetings()["meetings"]), 2)

    def test_every_delete_answers_after_the_delay_until_cleared_and_deletes_run_at_once(self):
        # The cleanup benchmark's zoom.us: "Delete a meeting" (DELETE /meetings/{meetingId},
        # ../shared/fixtures/zoom/ZoomMeetingAPISpec.json) answers 204 "Meeting deleted."
        # after a network round trip; slowed, not failed, and concurrent deletes (one per
        # provider account) are each slowed, not queued behind one another.
        ids = [self.create()["id"] for _ in range(3)]
        self.fault(DELETE, "delay", ms=300, times=-1)
        started = time.monotonic()
        self.assertEqual(self.api("DELETE", f"/meetings/{ids[0]}")[0], 204)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        answers = []
        workers = [threading.Thread(target=lambda i=i: answers.append(self.api("DELETE", f"/meetings/{i}")[0]))
                   for i in ids[1:]]
        started = time.monotonic()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        both = time.monotonic() - started
        self.assertEqual(answers, [204, 204])
        self.assertGreaterEqual(both, 0.3)
        self.assertLess(both, 0.6, "two deletes at once take one delay, not two")
        self.assertEqual(self.stored_meetings()["meetings"], [])
        self.assertEqual(self.control("DELETE", "faults")[0], 204)
        started = time.monotonic()
        self.assertEqual(self.api("DELETE", f"/meetings/{ids[0]}")[0], 404)  # gone: not delayed
        self.assertLess(time.monotonic() - started, 0.3)

    def test_hold_waits_for_release_then_processes(self):
        self.fault(CREATE, "hold")
        answers = []
        worker = threading.Thread(target=lambda: answers.append(self.create()))
        worker.start()
        deadline = time.monotonic() + 5
        while self.calls()["counts"][CREATE] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        self.assertEqual((answers, len(self.stored_meetings()["meetings"])), ([], 0), "held")
        self.assertEqual(self.control("POST", "release")[0], 204)
        worker.join(5)
        self.assertEqual(len(answers), 1)
        self.assertEqual(len(self.stored_meetings()["meetings"]), 1)

    def test_rate_limit(self):
        for retry_after in ("2", "Wed, 21 Oct 2037 07:28:00 GMT"):
            with self.subTest(retry_after=retry_after):
                self.fault(CREATE, "rate_limit", retryAfter=retry_after)
                status, headers, body = self.api("POST", "/users/me/meetings", meeting_body())
                self.assertEqual(status, 429)
                self.assertEqual(body, {"code": 429, "message": "You have exceeded the rate limit of 10 requests per second."})
                self.assertEqual(
                    (headers["Retry-After"], headers["X-RateLimit-Category"], headers["X-RateLimit-Type"]),
                    (retry_after, "Light", "QPS"),
                )
        # retryAfter null: the same 429 without Retry-After.
        self.fault(CREATE, "rate_limit", retryAfter=None)
        status, headers, _ = self.api("POST", "/users/me/meetings", meeting_body())
        self.assertEqual((status, "Retry-After" in headers, headers["X-RateLimit-Type"]), (429, False, "QPS"))

    def test_only_zooms_listed_time_zones_are_accepted(self):
        self.assertEqual(self.api("POST", "/users/me/meetings", {**meeting_body(), "timezone": "Europe/Kiev"})[0], 201)
        status, _, body = self.api("POST", "/users/me/meetings", {**meeting_body(), "timezone": "Europe/Kyiv"})
        self.assertEqual((status, body["code"], body["errors"][0]["field"]), (400, 300, "timezone"))
        self.assertEqual(len(self.stored_meetings()["meetings"]), 1)

    def test_daily_limit(self):
        self.fault(LIST, "daily_limit")
        status, headers, body = self.api("GET", "/users/me/meetings")
        self.assertEqual((status, body["code"]), (429, 429))
        self.assertTrue(body["message"].startswith("You have reached the maximum daily rate limit for this API."))
        self.assertEqual(
            (headers["X-RateLimit-Type"], headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]),
            ("Daily-limit", "100", "0"),
        )
        retry_at = email.utils.parsedate_to_datetime(headers["Retry-After"])
        now = datetime.now(timezone.utc)
        self.assertEqual(retry_at, now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1))

    def test_token_expired(self):
        self.fault(GET, "token_expired")
        self.assertZoomError(self.api("GET", "/meetings/12345678901"), 401, 124, "Access token is expired.")
        self.assertZoomError(self.api("GET", "/meetings/12345678901"), 404, 3001)

    def test_drop_after_performs_the_operation_but_loses_the_answer(self):
        self.fault(CREATE, "drop_after")
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            self.api("POST", "/users/me/meetings", meeting_body())
        self.assertEqual(len(self.stored_meetings()["meetings"]), 1)
        calls = self.calls()
        self.assertEqual(calls["requests"][-1]["fault"], "drop_after")
        self.assertEqual((calls["counts"][CREATE], calls["succeeded"][CREATE]), (1, 0))

    def test_oauth_fault(self):
        self.fault(OAUTH, "status", status=500)
        status, _, _ = http("POST", f"{self.url}/oauth/token?grant_type=account_credentials&account_id=ACC", headers=basic())
        self.assertEqual(status, 500)
        self.get_token()

    def test_token_endpoint_latency_until_cleared(self):
        # The bench's realistic zoom.us: every grant answered after the delay, still granted.
        self.fault(OAUTH, "delay", ms=200, times=-1)
        for _ in range(2):
            started = time.monotonic()
            self.get_token()
            self.assertGreaterEqual(time.monotonic() - started, 0.2)
        self.assertEqual(self.control("DELETE", "faults")[0], 204)
        started = time.monotonic()
        self.get_token()
        self.assertLess(time.monotonic() - started, 0.2)

    def test_rule_validation(self):
        for rule in (
            {"operation": "GET /v2/users", "kind": "status"},
            {"operation": CREATE, "kind": "explode"},
            {"operation": CREATE, "kind": "status", "times": 0},
            {"operation": CREATE, "kind": "status", "status": 99},
            {"operation": CREATE, "kind": "delay"},
        ):
            with self.subTest(rule=rule):
                self.assertEqual(self.control("POST", "faults", rule)[0], 400)

    def test_reset_clears_everything(self):
        self.create()
        self.fault(CREATE, "status", times=-1)
        self.control("POST", "uuid-mode", {"mode": "slash"})
        self.assertEqual(self.control("POST", "reset")[0], 204)
        self.assertEqual(self.stored_meetings(), {"meetings": [], "deleted": []})
        self.assertEqual(self.control("GET", "faults")[2], {"faults": []})
        self.assertEqual(self.calls()["requests"], [])
        self.assertZoomError(self.api("GET", "/meetings/12345678901"), 401, 124)  # tokens revoked
        self.token = self.get_token()
        self.create()  # the fault rule is gone


class LogHygieneTest(SandboxTestCase):
    def test_no_secret_reaches_the_log(self):
        http("POST", f"{self.url}/oauth/token?grant_type=account_credentials&account_id=ACC",
             headers=basic(client_secret="wrong-secret"))
        created = self.create(password="Sec-ret_1")
        self.api("POST", "/users/me/meetings", meeting_body(password="TooLongPass1"))
        self.api("GET", f"/meetings/{created['id']}")
        self.api("GET", "/users/me/meetings?page_size=1&next_page_token=whatever")
        self.api("PATCH", f"/meetings/{created['id']}", {"agenda": "private agenda"})
        http("GET", created["join_url"])
        http("GET", created["start_url"])
        self.fault(CREATE, "drop_after")
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            self.api("POST", "/users/me/meetings", meeting_body())
        self.api("GET", "/meetings/1?token=leak")

        issued = self.control("GET", "issued")[2]
        secrets = [*issued["accessTokens"], *issued["zakTokens"], *issued["passwords"],
                   CLIENT_SECRET, "wrong-secret", "TooLongPass1", "private agenda", "Bearer", "zak=", "pwd=", "leak"]
        self.assertGreaterEqual(len(issued["zakTokens"]), 3)
        log = self.sandbox.logs()
        self.assertIn("[zoom-sandbox] POST /v2/users/{userId}/meetings 201", log)
        for secret in secrets:
            self.assertNotIn(secret, log)


def zoom_signature(secret, timestamp, body):
    """Computed here independently of sandbox.py: v0=<hex HMAC-SHA256(secret, "v0:{ts}:{body}")>."""
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def compact(event):
    return json.dumps(event, separators=(",", ":")).encode()


class Receiver:
    """A tiny webhook subscriber on a free loopback port: records every request and answers with
    the next queued (status, content type, bytes), by default 200 {"ok": true}. It answers
    endpoint.url_validation as Zoom requires (plainToken + encryptedToken)."""

    def __init__(self):
        self.requests, self.replies = [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": self.headers, "body": body})
                status, content_type, data = (
                    receiver.replies.pop(0) if receiver.replies else (200, "application/json", b'{"ok": true}')
                )
                if body.startswith(b'{"event":"endpoint.url_validation"'):
                    plain = json.loads(body)["payload"]["plainToken"]
                    encrypted = hmac.new(WEBHOOK_SECRET.encode(), plain.encode(), hashlib.sha256).hexdigest()
                    data = json.dumps({"plainToken": plain, "encryptedToken": encrypted}).encode()
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/zoom/webhook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookTestCase(SandboxTestCase):
    """A sandbox plus a local receiver as its webhook target."""

    @classmethod
    def webhook_args(cls):
        return ("--webhook-secret", WEBHOOK_SECRET, "--webhook-target", cls.receiver.url)

    @classmethod
    def setUpClass(cls):
        cls.receiver = Receiver()
        cls.extra_args = cls.webhook_args()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.receiver.close()

    def setUp(self):
        super().setUp()
        self.receiver.requests.clear()
        self.receiver.replies.clear()

    def deliver(self, event="meeting.started", **fields):
        """(sandbox answer, the request the receiver got)"""
        count = len(self.receiver.requests)
        status, _, answer = self.control("POST", "webhooks/send", {"event": event, **fields})
        self.assertEqual(status, 200, answer)
        self.assertEqual(len(self.receiver.requests), count + 1)
        return answer, self.receiver.requests[-1]

    def assertValidlySigned(self, request, secret=WEBHOOK_SECRET):
        headers = request["headers"]
        expected = zoom_signature(secret, headers["x-zm-request-timestamp"], request["body"])
        self.assertEqual(headers.get_all("x-zm-signature"), [expected])


MEETING_FIELDS = ["id", "uuid", "host_id", "topic", "type", "start_time", "duration", "timezone"]
TAMPERS = [
    "body_byte", "whitespace", "wrong_secret", "truncated_signature", "v0_only", "uppercase_hex", "missing_v0",
    "v1_scheme", "missing_signature", "missing_timestamp", "double_signature", "timestamp_past",
    "timestamp_future", "non_numeric_timestamp", "empty_body", "different_timestamp",
]


class WebhookTest(WebhookTestCase):
    def other_secrets(self):
        return set(self.control("GET", "issued")[2]["webhookSecrets"]) - {WEBHOOK_SECRET}

    def test_valid_delivery_verifies_independently(self):
        created = self.create()
        answer, request = self.deliver("meeting.started", meetingId=created["id"])
        self.assertEqual((answer["status"], answer["body"]), (200, {"ok": True}))
        sent = answer["sent"]
        self.assertEqual(set(sent), {"event", "eventTs", "timestamp"})
        self.assertLess(abs(sent["timestamp"] - time.time()), 5)
        self.assertLess(abs(sent["eventTs"] / 1000 - time.time()), 5)
        headers = request["headers"]
        self.assertEqual((request["path"], headers["Content-Type"]), ("/zoom/webhook", "application/json"))
        self.assertEqual(headers["x-zm-request-timestamp"], str(sent["timestamp"]))
        self.assertRegex(headers["x-zm-signature"], r"^v0=[0-9a-f]{64}$")
        self.assertValidlySigned(request)
        event = json.loads(request["body"])
        self.assertEqual(request["body"], compact(event))  # compact JSON, as Zoom sends it
        self.assertEqual(event, {
            "event": "meeting.started", "event_ts": sent["eventTs"],
            "payload": {"account_id": ACCOUNT_ID, "object": {k: created[k] for k in MEETING_FIELDS}},
        })
        self.assertIsInstance(event["payload"]["object"]["id"], int)
        self.assertNotIn(WEBHOOK_SECRET, json.dumps(answer))
        self.assertNotIn(headers["x-zm-signature"][3:], json.dumps(answer))

    def test_explicit_times_and_meeting_id_as_string(self):
        created = self.create()
        answer, request = self.deliver(meetingId=str(created["id"]), eventTs=1732183200123, timestamp=1732183200)
        self.assertEqual(answer["sent"], {"event": "meeting.started", "eventTs": 1732183200123, "timestamp": 1732183200})
        self.assertEqual(request["headers"]["x-zm-request-timestamp"], "1732183200")
        self.assertValidlySigned(request)
        self.assertEqual(json.loads(request["body"])["event_ts"], 1732183200123)

    def test_ended_deleted_and_updated_bodies(self):
        created = self.create()
        base = {k: created[k] for k in MEETING_FIELDS}
        ended = json.loads(self.deliver("meeting.ended", meetingId=created["id"])[1]["body"])["payload"]["object"]
        end_time = datetime.fromisoformat(ended.pop("end_time").replace("Z", "+00:00"))
        self.assertLess(abs((end_time - datetime.now(timezone.utc)).total_seconds()), 5)
        self.assertEqual(ended, base)

        answer, request = self.deliver("meeting.updated", meetingId=created["id"], oldObject={"topic": "Before"})
        payload = json.loads(request["body"])["payload"]
        updated = {k: created[k] for k in ("id", "uuid", "start_time", "duration", "topic", "timezone")}
        self.assertEqual(payload, {"account_id": ACCOUNT_ID, "object": updated,
                                   "old_object": {**updated, "topic": "Before"}, "time_stamp": answer["sent"]["eventTs"]})

        self.assertEqual(self.api("DELETE", f"/meetings/{created['id']}")[0], 204)
        deleted = self.deliver("meeting.deleted", meetingId=created["id"])[1]
        self.assertEqual(json.loads(deleted["body"])["payload"]["object"], base)
        self.assertValidlySigned(deleted)

    def test_participant_bodies(self):
        created = self.create()
        joined = json.loads(self.deliver(
            "meeting.participant_joined", meetingId=created["id"], participant={"host": True}
        )[1]["body"])["payload"]["object"]
        person = joined.pop("participant")
        self.assertEqual(joined, {k: created[k] for k in MEETING_FIELDS})
        self.assertEqual(set(person), {"user_id", "user_name", "id", "participant_uuid", "join_time"})
        self.assertEqual((person["id"], person["user_name"]), (created["host_id"], "Participant"))
        self.assertRegex(person["user_id"], r"^\d+$")
        self.assertRegex(person["join_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        left = json.loads(self.deliver("meeting.participant_left", meetingId=created["id"])[1]["body"])
        person = left["payload"]["object"]["participant"]
        self.assertEqual(set(person), {"user_id", "user_name", "id", "participant_uuid", "leave_time"})
        self.assertNotIn(person["id"], ("", created["host_id"]))

        guest = json.loads(self.deliver(
            "meeting.participant_joined", meetingId=created["id"],
            participant={"id": "", "user_name": "Guest", "join_time": "2026-11-21T10:01:00Z"},
        )[1]["body"])["payload"]["object"]["participant"]
        self.assertEqual((guest["id"], guest["user_name"], guest["join_time"]), ("", "Guest", "2026-11-21T10:01:00Z"))

    def test_waiting_bodies(self):
        created = self.create()
        base = {k: created[k] for k in MEETING_FIELDS}
        answer, request = self.deliver("meeting.participant_joined_waiting_room", meetingId=created["id"])
        self.assertValidlySigned(request)
        waiting = json.loads(request["body"])
        self.assertEqual(waiting["event"], "meeting.participant_joined_waiting_room")
        person = waiting["payload"]["object"].pop("participant")
        self.assertEqual(waiting["payload"]["object"], base)
        self.assertEqual(set(person), {"user_id", "user_name", "id", "participant_uuid", "date_time"})
        self.assertRegex(person["date_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertNotIn(person["id"], ("", created["host_id"]))
        for event in ("meeting.participant_jbh_waiting", "meeting.participant_jbh_joined"):
            body = json.loads(self.deliver(event, meetingId=created["id"], participant={"id": ""})[1]["body"])
            person = body["payload"]["object"].pop("participant")
            self.assertEqual((body["event"], body["payload"]["object"]), (event, base))
            self.assertEqual(person, {"id": "", "user_name": "Participant"})

    def test_raw_object_and_unknown_event(self):
        created = self.create()
        merged = json.loads(self.deliver(meetingId=created["id"], object={"topic": "Raw", "extra": 1})[1]["body"])
        self.assertEqual(merged["payload"]["object"], {**{k: created[k] for k in MEETING_FIELDS}, "topic": "Raw", "extra": 1})
        answer, request = self.deliver("meeting.sharing_started", object={"id": "85746065432", "uuid": "abc=="})
        self.assertEqual(answer["sent"]["event"], "meeting.sharing_started")
        self.assertEqual(json.loads(request["body"])["payload"],
                         {"account_id": ACCOUNT_ID, "object": {"id": "85746065432", "uuid": "abc=="}})
        self.assertValidlySigned(request)

    def test_url_validation_carries_a_plain_token(self):
        answer, request = self.deliver("endpoint.url_validation")
        event = json.loads(request["body"])
        plain = event["payload"]["plainToken"]
        self.assertEqual((set(event), set(event["payload"])), ({"event", "event_ts", "payload"}, {"plainToken"}))
        self.assertGreaterEqual(len(plain), 16)
        self.assertEqual(answer["sent"]["plainToken"], plain)
        self.assertValidlySigned(request)
        expected = hmac.new(WEBHOOK_SECRET.encode(), plain.encode(), hashlib.sha256).hexdigest()
        self.assertEqual(answer["body"], {"plainToken": plain, "encryptedToken": expected})

    def test_target_answer_is_passed_through(self):
        self.receiver.replies += [(401, "text/plain", b"bad signature"), (204, None, b""), (500, "application/json", b"{")]
        got = [(answer["status"], answer["body"]) for answer, _ in (self.deliver() for _ in range(3))]
        self.assertEqual(got, [(401, "bad signature"), (204, None), (500, "{")])  # text when not JSON

    def test_signature_tampers(self):
        def received(tamper):
            answer, request = self.deliver(tamper=tamper)
            ts = request["headers"]["x-zm-request-timestamp"]
            self.assertEqual(ts, str(answer["sent"]["timestamp"]))
            json.loads(request["body"])  # the body itself is intact
            return request["headers"].get_all("x-zm-signature"), zoom_signature(WEBHOOK_SECRET, ts, request["body"])

        got, valid = received("truncated_signature")
        self.assertEqual((got, len(got[0])), ([valid[:-1]], len(valid) - 1))
        self.assertEqual(received("v0_only")[0], ["v0="])
        got, valid = received("uppercase_hex")
        self.assertEqual(got, ["v0=" + valid[3:].upper()])
        self.assertNotEqual(got[0], valid)
        got, valid = received("missing_v0")
        self.assertEqual(got, [valid[3:]])
        got, valid = received("v1_scheme")
        self.assertEqual(got, ["v1=" + valid[3:]])

        answer, request = self.deliver(tamper="wrong_secret")
        got, headers = request["headers"].get_all("x-zm-signature"), request["headers"]
        self.assertRegex(got[0], r"^v0=[0-9a-f]{64}$")
        self.assertNotEqual(got, [zoom_signature(WEBHOOK_SECRET, headers["x-zm-request-timestamp"], request["body"])])
        self.assertIn(got[0], [zoom_signature(s, headers["x-zm-request-timestamp"], request["body"])
                               for s in self.other_secrets()])

    def test_header_tampers(self):
        ts = 1732183200
        request = self.deliver(tamper="missing_signature", timestamp=ts)[1]
        self.assertEqual((request["headers"].get_all("x-zm-signature"), request["headers"]["x-zm-request-timestamp"]),
                         (None, str(ts)))
        answer, request = self.deliver(tamper="missing_timestamp", timestamp=ts)
        self.assertIsNone(answer["sent"]["timestamp"])
        self.assertIsNone(request["headers"].get_all("x-zm-request-timestamp"))
        self.assertEqual(request["headers"].get_all("x-zm-signature"), [zoom_signature(WEBHOOK_SECRET, ts, request["body"])])

        request = self.deliver(tamper="double_signature", timestamp=ts)[1]
        got = request["headers"].get_all("x-zm-signature")
        self.assertEqual(len(got), 2)  # really two header lines
        self.assertEqual(got[0], zoom_signature(WEBHOOK_SECRET, ts, request["body"]))
        self.assertRegex(got[1], r"^v0=[0-9a-f]{64}$")
        self.assertNotEqual(got[0], got[1])
        self.assertIn(got[1], [zoom_signature(s, ts, request["body"]) for s in self.other_secrets()])

    def test_body_tampers(self):
        answer, request = self.deliver(tamper="body_byte")
        body, ts = request["body"], request["headers"]["x-zm-request-timestamp"]
        event = json.loads(body)  # still valid JSON
        self.assertEqual(abs(event["event_ts"] - answer["sent"]["eventTs"]), 1)
        signed = compact({**event, "event_ts": answer["sent"]["eventTs"]})
        self.assertEqual(len(signed), len(body))
        self.assertEqual(sum(a != b for a, b in zip(signed, body)), 1)
        self.assertEqual(request["headers"]["x-zm-signature"], zoom_signature(WEBHOOK_SECRET, ts, signed))
        self.assertNotEqual(request["headers"]["x-zm-signature"], zoom_signature(WEBHOOK_SECRET, ts, body))

        answer, request = self.deliver(tamper="whitespace")
        body, ts = request["body"], request["headers"]["x-zm-request-timestamp"]
        event = json.loads(body)
        self.assertEqual((event["event"], event["event_ts"]), ("meeting.started", answer["sent"]["eventTs"]))
        self.assertNotEqual(body, compact(event))
        self.assertEqual(body.replace(b", ", b",").replace(b": ", b":"), compact(event))
        self.assertEqual(request["headers"]["x-zm-signature"], zoom_signature(WEBHOOK_SECRET, ts, compact(event)))

        request = self.deliver(tamper="empty_body")[1]
        headers = request["headers"]
        self.assertEqual((request["body"], headers["Content-Length"]), (b"", "0"))
        self.assertEqual(headers["x-zm-signature"], zoom_signature(WEBHOOK_SECRET, headers["x-zm-request-timestamp"], b""))

    def test_timestamp_tampers(self):
        for tamper, offset in (("timestamp_past", -301), ("timestamp_future", 301)):
            with self.subTest(tamper=tamper):
                answer, request = self.deliver(tamper=tamper)
                ts = int(request["headers"]["x-zm-request-timestamp"])
                self.assertEqual(ts, answer["sent"]["timestamp"])
                self.assertLess(abs(ts - (time.time() + offset)), 5)
                self.assertValidlySigned(request)  # signed consistently: only the age is wrong
        answer, request = self.deliver(tamper="non_numeric_timestamp")
        self.assertEqual(request["headers"]["x-zm-request-timestamp"], answer["sent"]["timestamp"])
        self.assertFalse(request["headers"]["x-zm-request-timestamp"].isdigit())
        self.assertValidlySigned(request)
        request = self.deliver(tamper="different_timestamp", timestamp=1732183200)[1]
        self.assertEqual(request["headers"]["x-zm-request-timestamp"], "1732183200")
        self.assertEqual(request["headers"]["x-zm-signature"], zoom_signature(WEBHOOK_SECRET, 1732183199, request["body"]))

    def test_deliveries_are_listed_and_reset(self):
        self.receiver.replies.append((401, "text/plain", b"no"))
        for tamper in TAMPERS:
            self.deliver("meeting.ended", tamper=tamper)
        self.assertEqual(
            self.control("GET", "webhooks")[2],
            [{"event": "meeting.ended", "tamper": TAMPERS[0], "status": 401}]
            + [{"event": "meeting.ended", "tamper": t, "status": 200} for t in TAMPERS[1:]],
        )
        self.control("POST", "reset")
        self.assertEqual(self.control("GET", "webhooks")[2], [])

    def test_bad_requests(self):
        cases = [
            ({}, 400),
            ({"event": ""}, 400),
            ({"event": "meeting.started", "tamper": "bogus"}, 400),
            ({"event": "meeting.started", "meetingId": 12345678901}, 404),
            ({"event": "meeting.started", "meetingId": "nope"}, 404),
            ({"event": "meeting.started", "eventTs": "soon"}, 400),
            ({"event": "meeting.started", "timestamp": -1}, 400),
            ({"event": "meeting.started", "object": []}, 400),
            ({"event": "meeting.started", "target": "ftp://127.0.0.1/"}, 400),
        ]
        for body, status in cases:
            with self.subTest(body=body):
                self.assertEqual(self.control("POST", "webhooks/send", body)[0], status)
        self.assertEqual(http("POST", f"{self.url}/__sandbox/webhooks/send", data=b"{", headers={})[0], 400)
        self.assertEqual(self.receiver.requests, [])

        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        status, _, body = self.control("POST", "webhooks/send", {"event": "meeting.started", "target": f"http://127.0.0.1:{port}/"})
        self.assertEqual(status, 502)
        self.assertIn("unreachable", body["error"])
        self.assertEqual(self.control("GET", "webhooks")[2], [{"event": "meeting.started", "tamper": None, "status": None}])

    def test_webhook_secrets_never_reach_the_log(self):
        before = len(self.control("GET", "issued")[2]["webhookSecrets"])  # kept across resets
        self.deliver("endpoint.url_validation")
        self.deliver(tamper="wrong_secret")
        signature = self.deliver(tamper="double_signature")[1]["headers"]["x-zm-signature"]
        answer, request = self.deliver(secret="per-request-Secret_77")
        self.assertValidlySigned(request, "per-request-Secret_77")
        issued = self.control("GET", "issued")[2]["webhookSecrets"]
        self.assertEqual(issued[0], WEBHOOK_SECRET)
        self.assertIn("per-request-Secret_77", issued)
        self.assertEqual(len(issued), before + 3)  # + per-request, wrong_secret's and double_signature's
        log = self.sandbox.logs()
        self.assertIn("[zoom-sandbox] POST /__sandbox/webhooks/send 200", log)
        for secret in [*issued, signature[3:]]:
            self.assertNotIn(secret, log)
            self.assertNotIn(secret, json.dumps(answer))


class WebhookDefaultsTest(WebhookTestCase):
    """No --webhook-secret / --webhook-target: both must come with the request."""

    @classmethod
    def webhook_args(cls):
        return ()

    def test_target_and_secret_are_required_without_flags(self):
        status, _, body = self.control("POST", "webhooks/send", {"event": "meeting.started", "secret": "s"})
        self.assertEqual(status, 400)
        self.assertIn("target", body["error"])
        status, _, body = self.control("POST", "webhooks/send", {"event": "meeting.started", "target": self.receiver.url})
        self.assertEqual(status, 400)
        self.assertIn("secret", body["error"])
        self.assertEqual(self.receiver.requests, [])

        answer, request = self.deliver(target=self.receiver.url, secret="only-per-request")
        self.assertEqual(answer["status"], 200)
        self.assertValidlySigned(request, "only-per-request")
        self.assertEqual(self.control("GET", "issued")[2]["webhookSecrets"], ["only-per-request"])
        self.assertNotIn("only-per-request", self.sandbox.logs())


CLINIC_B = {"accountId": "ACC-B", "clientId": "CID-B", "clientSecret": "CSECRET-B", "webhookSecret": "Wh-secret-B",
            "users": [{"email": "Dr.B@clinic-b.invalid", "id": "drB_user_id_0000000001"}, {"email": "nurse@clinic-b.invalid"}]}
DAILY_CAP_MESSAGE = ("You have exceeded the daily rate limit ({}) of Meeting Create/Update API requests permitted for "
                     "this particular user. You may resume these requests at GMT 00:00:00.")


class AccountsTest(WebhookTestCase):
    """Several accounts (clinics): their own apps, users, meetings, tokens and webhook secrets."""

    def add_clinic_b(self):
        status, _, body = self.control("POST", "accounts", CLINIC_B)
        self.assertEqual(status, 201, body)
        return body

    def token_b(self):
        query = "grant_type=account_credentials&account_id=ACC-B"
        status, _, body = http("POST", f"{self.url}/oauth/token?{query}", headers=basic("CID-B", "CSECRET-B"))
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def create_as(self, token, user="me", **overrides):
        status, _, body = self.api("POST", f"/users/{urllib.parse.quote(user)}/meetings", meeting_body(**overrides),
                                   token=token)
        self.assertEqual(status, 201, body)
        return body

    def host(self):
        return self.control("GET", "accounts")[2]["accounts"][0]["users"][0]

    def test_add_and_list_accounts_without_secrets(self):
        added = self.add_clinic_b()
        self.assertEqual(added["accountId"], "ACC-B")
        self.assertEqual(added["users"][0], {"id": "drB_user_id_0000000001", "email": "Dr.B@clinic-b.invalid"})
        self.assertRegex(added["users"][1]["id"], r"^[A-Za-z0-9_-]{22}$")  # made up, Zoom-style
        status, _, user = self.control("POST", "accounts/ACC-B/users", {"email": "locum@clinic-b.invalid"})
        self.assertEqual((status, user["email"]), (201, "locum@clinic-b.invalid"))
        listed = self.control("GET", "accounts")[2]["accounts"]
        self.assertEqual([a["accountId"] for a in listed], [ACCOUNT_ID, "ACC-B"])
        self.assertEqual(listed[1]["users"], [*added["users"], user])
        self.assertEqual(listed[0]["users"], [self.host()])
        for secret in ("CSECRET-B", "Wh-secret-B", CLIENT_SECRET, WEBHOOK_SECRET):
            self.assertNotIn(secret, json.dumps(listed))
        issued = self.control("GET", "issued")[2]
        self.assertLessEqual({CLIENT_SECRET, "CSECRET-B"}, set(issued["clientSecrets"]))
        self.assertLessEqual({WEBHOOK_SECRET, "Wh-secret-B"}, set(issued["webhookSecrets"]))

    def test_account_control_errors(self):
        self.add_clinic_b()
        self.assertEqual(self.control("POST", "accounts", CLINIC_B)[0], 409)
        self.assertEqual(self.control("POST", "accounts", {**CLINIC_B, "accountId": "ACC-C"})[0], 409)  # user id taken
        self.assertEqual(self.control("POST", "accounts", {"accountId": "ACC-C", "clientId": "x"})[0], 400)
        self.assertEqual(self.control("POST", "accounts/NOPE/users", {"email": "a@b.invalid"})[0], 404)
        self.assertEqual(self.control("POST", "accounts/ACC-B/users", {"email": "DR.B@clinic-b.invalid"})[0], 409)
        self.assertEqual(self.control("POST", "accounts/ACC-B/users", {"id": "x"})[0], 400)

    def test_each_account_has_its_own_credentials(self):
        self.add_clinic_b()
        self.token_b()
        for creds, account, error in [
            (("CID-B", "CSECRET-B"), ACCOUNT_ID, "invalid_client"),  # B's app, A's account
            ((CLIENT_ID, CLIENT_SECRET), "ACC-B", "invalid_client"),  # A's app, B's account
            (("CID-B", CLIENT_SECRET), "ACC-B", "invalid_client"),
            (("CID-B", "CSECRET-B"), "OTHER", "invalid_request"),  # as for the CLI account
        ]:
            with self.subTest(creds=creds, account=account):
                query = f"grant_type=account_credentials&account_id={account}"
                status, _, body = http("POST", f"{self.url}/oauth/token?{query}", headers=basic(*creds))
                self.assertEqual((status, body["error"]), (400, error))

    def test_meetings_users_and_tokens_are_per_account(self):
        self.add_clinic_b()
        token_b = self.token_b()
        a = self.create()
        b = self.create_as(token_b)
        nurse = self.create_as(token_b, "NURSE@clinic-b.invalid")
        self.assertEqual((b["host_id"], b["host_email"]), ("drB_user_id_0000000001", "Dr.B@clinic-b.invalid"))
        self.assertEqual(nurse["host_email"], "nurse@clinic-b.invalid")
        self.assertEqual((a["host_id"], a["host_email"]), (self.host()["id"], "host@sandbox.invalid"))
        self.assertEqual([m["id"] for m in self.api("GET", "/users/me/meetings")[2]["meetings"]], [a["id"]])
        self.assertEqual([m["id"] for m in self.api("GET", "/users/me/meetings", token=token_b)[2]["meetings"]],
                         [b["id"]])
        listed = self.api("GET", f"/users/{nurse['host_id']}/meetings", token=token_b)[2]["meetings"]
        self.assertEqual([m["id"] for m in listed], [nurse["id"]])
        # A meeting of account B does not exist for account A's token, and the other way round.
        for token, meeting in ((self.token, b), (token_b, a)):
            for method, path, body in (("GET", "", None), ("PATCH", "", {"topic": "x"}), ("DELETE", "", None),
                                       ("PUT", "/status", {"action": "end"})):
                with self.subTest(method=method, meeting=meeting["host_email"]):
                    self.assertZoomError(self.api(method, f"/meetings/{meeting['id']}{path}", body, token=token),
                                         404, 3001, f"Meeting does not exist: {meeting['id']}.")
        self.assertEqual(self.api("GET", f"/meetings/{b['id']}", token=token_b)[0], 200)
        # Users resolve within the token's account only.
        self.assertZoomError(self.api("POST", "/users/host@sandbox.invalid/meetings", meeting_body(), token=token_b),
                             404, 1001, "User does not exist: host@sandbox.invalid.")
        self.assertZoomError(self.api("GET", "/users/drB_user_id_0000000001/meetings"),
                             404, 1001, "User does not exist: drB_user_id_0000000001.")

    def test_unknown_user_is_1001(self):
        for user_id in ("dr.host@example.com", "30R7kT7bTIKSNUFEuH_Qlg"):
            with self.subTest(user_id=user_id):
                path = f"/users/{urllib.parse.quote(user_id)}/meetings"
                self.assertZoomError(self.api("POST", path, meeting_body()), 404, 1001, f"User does not exist: {user_id}.")
                self.assertZoomError(self.api("GET", path), 404, 1001, f"User does not exist: {user_id}.")
        self.assertEqual(self.stored_meetings()["meetings"], [])

    def test_received_and_calls_name_the_account_and_user(self):
        self.add_clinic_b()
        token_b = self.token_b()
        b = self.create_as(token_b)
        self.api("PATCH", f"/meetings/{b['id']}", {"topic": "t"}, token=token_b)
        self.api("GET", f"/meetings/{b['id']}")  # A's token: not A's meeting
        self.api("GET", "/users/me/meetings", token="forged")
        self.api("POST", "/users/nobody@x.invalid/meetings", meeting_body(), token=token_b)
        expected = [
            (OAUTH, ACCOUNT_ID, None),  # setUp's grant
            (OAUTH, "ACC-B", None),
            (CREATE, "ACC-B", b["host_id"]),
            (UPDATE, "ACC-B", b["host_id"]),
            (GET, ACCOUNT_ID, None),
            (LIST, None, None),
            (CREATE, "ACC-B", None),
        ]
        received = self.control("GET", "received")[2]["requests"]
        self.assertEqual([(r["operation"], r["accountId"], r["userId"]) for r in received], expected)
        requests = self.calls()["requests"]
        self.assertEqual([(r["operation"], r["accountId"], r["userId"]) for r in requests], expected)
        http("POST", f"{self.url}/oauth/token?grant_type=account_credentials&account_id=ACC-B", headers=basic())
        self.assertEqual(self.calls()["requests"][-1]["accountId"], None)  # A's app asking for B: refused

    def test_daily_cap_per_host_user(self):
        self.add_clinic_b()
        token_b = self.token_b()
        self.assertEqual(self.control("POST", "daily-cap", {"cap": 3})[2], {"cap": 3, "accountId": None, "userId": None})
        created = [self.create(topic=f"t{i}") for i in range(2)]
        self.assertEqual(self.api("PATCH", f"/meetings/{created[0]['id']}", {"topic": "moved"})[0], 204)  # 3rd
        status, headers, body = self.api("POST", "/users/me/meetings", meeting_body())
        self.assertEqual((status, body), (429, {"code": 429, "message": DAILY_CAP_MESSAGE.format(3)}))
        self.assertIsNone(headers.get("Retry-After"))
        self.assertIsNone(headers.get("X-RateLimit-Type"))
        status, headers, body = self.api("PATCH", f"/meetings/{created[1]['id']}", {"topic": "refused"})
        self.assertEqual((status, body["code"]), (429, 429))
        self.assertIsNone(headers.get("Retry-After"))
        meetings = {m["id"]: m for m in self.stored_meetings()["meetings"]}
        self.assertEqual(len(meetings), 2)  # refused: no effect
        self.assertEqual(meetings[created[1]["id"]]["topic"], "t1")
        # Other users keep working, each with their own count.
        for _ in range(3):
            self.create_as(token_b)
        self.assertEqual(self.api("POST", "/users/me/meetings", meeting_body(), token=token_b)[0], 429)
        self.create_as(token_b, "nurse@clinic-b.invalid")
        # Reads, deletes and status changes are not capped.
        self.assertEqual(self.api("GET", f"/meetings/{created[0]['id']}")[0], 200)
        self.assertEqual(self.api("DELETE", f"/meetings/{created[0]['id']}")[0], 204)

    def test_daily_cap_for_one_user_or_one_account(self):
        self.add_clinic_b()
        token_b = self.token_b()
        answer = self.control("POST", "daily-cap", {"cap": 1, "accountId": "ACC-B", "userId": "nurse@clinic-b.invalid"})
        self.assertEqual(answer[0], 200)
        self.assertEqual(answer[2]["userId"], self.control("GET", "accounts")[2]["accounts"][1]["users"][1]["id"])
        self.create_as(token_b, "nurse@clinic-b.invalid")
        self.assertZoomError(self.api("POST", "/users/nurse@clinic-b.invalid/meetings", meeting_body(), token=token_b),
                             429, 429, DAILY_CAP_MESSAGE.format(1))
        self.create_as(token_b)
        self.create_as(token_b)
        self.assertEqual(self.control("POST", "daily-cap", {"cap": 0, "accountId": "ACC-B"})[0], 200)
        self.assertEqual(self.api("POST", "/users/me/meetings", meeting_body(), token=token_b)[0], 429)
        self.create()  # the CLI account keeps its cap
        self.assertEqual(self.control("POST", "daily-cap", {"cap": 1, "userId": "nobody"})[0], 404)
        self.assertEqual(self.control("POST", "daily-cap", {"cap": 1, "accountId": "NOPE"})[0], 404)
        self.assertEqual(self.control("POST", "daily-cap", {"cap": -1})[0], 400)

    def test_reset_restores_the_cap_and_forgets_added_accounts(self):
        self.add_clinic_b()
        self.control("POST", "accounts/ACC/users", {"email": "extra@sandbox.invalid"})
        self.control("POST", "daily-cap", {"cap": 0})
        self.assertEqual(self.api("POST", "/users/me/meetings", meeting_body())[0], 429)
        self.assertEqual(self.control("POST", "reset")[0], 204)
        self.assertEqual(self.control("GET", "accounts")[2]["accounts"], [
            {"accountId": ACCOUNT_ID, "clientId": CLIENT_ID, "users": [self.host()]}])
        query = "grant_type=account_credentials&account_id=ACC-B"
        self.assertEqual(http("POST", f"{self.url}/oauth/token?{query}", headers=basic("CID-B", "CSECRET-B"))[0], 400)
        self.token = self.get_token()
        for i in range(5):  # cap 100 again, counts cleared
            self.create(topic=f"t{i}")
        self.assertIn("CSECRET-B", self.control("GET", "issued")[2]["clientSecrets"])  # kept across resets

    def test_whose_link(self):
        self.add_clinic_b()
        token_b = self.token_b()
        a, b = self.create(), self.create_as(token_b, "nurse@clinic-b.invalid")
        fresh = self.api("GET", f"/meetings/{b['id']}", token=token_b)[2]["start_url"]
        for url in (b["start_url"], fresh):
            status, _, owner = self.control("POST", "whose-link", {"url": url})
            self.assertEqual((status, owner), (200, {"accountId": "ACC-B", "userId": b["host_id"],
                                                     "email": "nurse@clinic-b.invalid", "expired": False}))
        owner = self.control("POST", "whose-link", {"url": a["start_url"]})[2]
        self.assertEqual((owner["accountId"], owner["userId"]), (ACCOUNT_ID, self.host()["id"]))
        self.assertEqual(self.control("POST", "whose-link", {"url": f"{self.url}/s/{a['id']}?zak=forged"})[0], 404)
        self.assertEqual(self.control("POST", "whose-link", {"url": a["join_url"]})[0], 404)
        self.assertEqual(self.control("POST", "whose-link", {})[0], 400)
        # A zak still opens only its own meeting's start page.
        zak = b["start_url"].split("zak=")[1]
        self.assertEqual(http("GET", f"{self.url}/s/{a['id']}?zak={zak}")[0], 403)
        self.assertEqual(http("GET", b["start_url"])[0], 200)

    def test_webhooks_speak_for_their_account(self):
        self.add_clinic_b()
        b = self.create_as(self.token_b())
        answer, request = self.deliver("meeting.started", accountId="ACC-B", meetingId=b["id"])
        self.assertValidlySigned(request, "Wh-secret-B")
        self.assertEqual(json.loads(request["body"])["payload"]["account_id"], "ACC-B")
        _, request = self.deliver("meeting.ended", meetingId=b["id"])  # the meeting's account by default
        self.assertValidlySigned(request, "Wh-secret-B")
        _, request = self.deliver("meeting.started", object={"id": 1})  # no account named: the CLI one
        self.assertValidlySigned(request)
        self.assertEqual(json.loads(request["body"])["payload"]["account_id"], ACCOUNT_ID)
        status, _, body = self.control("POST", "webhooks/send", {"event": "meeting.started", "accountId": "NOPE"})
        self.assertEqual(status, 404, body)
        self.assertNotIn("Wh-secret-B", self.sandbox.logs())


class ProcessTest(unittest.TestCase):
    def test_refuses_non_loopback_hosts(self):
        for host in ("0.0.0.0", "192.168.1.10", "example.com", "localhost"):
            with self.subTest(host=host):
                result = subprocess.run(
                    [sys.executable, str(SANDBOX), "--host", host, "--port", "0", "--account-id", ACCOUNT_ID,
                     "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET],
                    capture_output=True, text=True, timeout=30,
                )
                self.assertEqual(result.returncode, 2)
                self.assertEqual(result.stdout, "")
                self.assertIn("loopback", result.stderr)

    def test_exits_cleanly_on_sigterm_and_sigint(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                sandbox = Sandbox()
                try:
                    self.assertEqual(http("GET", f"{sandbox.url}/__sandbox/calls")[0], 200)
                    self.assertEqual(sandbox.stop(sig), 0)
                finally:
                    sandbox.close()


if __name__ == "__main__":
    unittest.main()

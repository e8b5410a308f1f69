"""Black-box tests of the Zoom sandbox: each test class runs sandbox.py as a subprocess on a
free loopback port and talks to it over HTTP.

    .venv/bin/python -m unittest discover -s infra/zoom-sandbox -p 'test_*.py'
"""

import base64
import email.utils
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

HERE = Path(__file__).resolve().parent
SANDBOX = HERE / "sandbox.py"
SPEC = json.loads((HERE / "spec" / "zoom-meetings-subset.json").read_text(encoding="utf-8"))
ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET = "ACC", "CID", "CSECRET"

CREATE = "POST /v2/users/{userId}/meetings"
LIST = "GET /v2/users/{userId}/meetings"
GET = "GET /v2/meetings/{meetingId}"
UPDATE = "PATCH /v2/meetings/{meetingId}"
DELETE = "DELETE /v2/meetings/{meetingId}"
STATUS = "PUT /v2/meetings/{meetingId}/status"
OAUTH = "POST /oauth/token"


class Sandbox:
    """sandbox.py as a subprocess; stderr (its log) goes to a temp file."""

    def __init__(self, *extra_args):
        self.log = tempfile.NamedTemporaryFile(prefix="zoom-sandbox-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, str(SANDBOX), "--port", "0", "--account-id", ACCOUNT_ID,
             "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, *extra_args],
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
        self.assertEqual(self.calls()["requests"][-1], {"operation": CREATE, "status": 201, "valid": True, "errors": [], "fault": None})

    def test_create_accepts_every_documented_user_id_form(self):
        for user_id in ("me", "dr.host@example.com", "30R7kT7bTIKSNUFEuH_Qlg"):
            with self.subTest(user_id=user_id):
                status, _, body = self.api("POST", f"/users/{urllib.parse.quote(user_id)}/meetings", meeting_body())
                self.assertEqual(status, 201, body)

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

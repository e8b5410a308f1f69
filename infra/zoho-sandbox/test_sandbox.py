"""Black-box tests of the Zoho sandbox: each test class runs sandbox.py as a subprocess on a
free loopback port and talks to it over HTTP.

    .venv/bin/python -m unittest discover -s infra/zoho-sandbox -p 'test_*.py'
"""

import json
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
from datetime import datetime, timezone
from http.client import HTTPConnection
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # infra/: sandbox_testkit
from sandbox_testkit import SandboxProcess, http  # noqa: E402
SANDBOX = HERE / "sandbox.py"
CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN = "1000.CLIENTID42", "csecret-Zoho_4242", "1000.refresh-Token_77"
ZSOID, ZUID = 12345678, 87654321
ORG = f"/{ZSOID}"

TOKEN = "POST /oauth/v2/token"
USER = "GET /api/v2/user.json"
CREATE = "POST /api/v2/{zsoid}/sessions.json"
LIST = "GET /api/v2/{zsoid}/sessions.json"
GET = "GET /api/v2/{zsoid}/sessions/{meetingKey}.json"
UPDATE = "PUT /api/v2/{zsoid}/sessions/{meetingKey}.json"
DELETE = "DELETE /api/v2/{zsoid}/sessions/{meetingKey}.json"
OPERATIONS = [TOKEN, USER, CREATE, LIST, GET, UPDATE, DELETE]

TOO_MANY = {
    "error": "Access Denied",
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "status": "failure",
}
TOO_MANY_ZH = {"error": "拒绝访问", "error_description": "您已连续提出过多请求，请稍后再试。", "status": "failure"}
TOKEN_LIMIT = {
    "error": "Access Denied",
    "error_description": "Token creation throttle limit reached. Please reuse the valid tokens you currently have.",
}
INVALID_TOKEN = {"error": {"code": 2000, "message": "INVALID_OAUTHTOKEN"}}
# The fields the list of meetings documents for each session (list-of-meeting-api.html).
LISTED_FIELDS = {"meetingKey", "topic", "presenterEmail", "startTime", "endTime", "duration", "timezone",
                 "joinLink", "pwd", "encryptPwd", "sysId"}
MISSING = object()  # session_body(field=MISSING) leaves the field out


class Sandbox(SandboxProcess):
    """sandbox.py as a subprocess; stderr (its log) goes to a temp file."""

    def __init__(self, *extra_args):
        super().__init__(SANDBOX, "zoho-sandbox", [
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
            "--refresh-token", REFRESH_TOKEN, "--zsoid", str(ZSOID), "--zuid", str(ZUID), *extra_args])


def grant_query(**overrides):
    params = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "refresh_token": REFRESH_TOKEN, **overrides}
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not MISSING})


def session_body(**overrides):
    session = {
        "topic": "Video consultation",
        "agenda": "Follow-up",
        "presenter": ZUID,
        "startTime": "Jan 15, 2031 10:00 AM",
        "duration": 1800000,
        "timezone": "Europe/Berlin",
        "participants": [{"email": "patient@example.com"}],
        **overrides,
    }
    return {"session": {k: v for k, v in session.items() if v is not MISSING}}


def listed(session):
    """A created session as the list shows it: the documented list fields only."""
    item = {k: v for k, v in session.items() if k in LISTED_FIELDS}
    item.update(presenterZuid=session["presenter"], creatorZuid=session["presenter"],
                meetingEmbedUrl=session["joinLink"].replace("/meeting/join?", "/meeting/embed?"))
    return item


def without_created(stored):
    """/__sandbox/meetings without the creation times Zoho's answers do not carry."""
    meetings = [{k: v for k, v in m.items() if k != "createdTimeMillisec"} for m in stored["meetings"]]
    return {"meetings": meetings, "deleted": stored["deleted"]}


def utc_ms(*fields):
    return int(datetime(*fields, tzinfo=timezone.utc).timestamp()) * 1000


class SandboxTestCase(unittest.TestCase):
    """One sandbox process per class, reset before every test."""

    extra_args = ()
    needs_token = True

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox(*cls.extra_args)
        cls.url = cls.sandbox.url

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()

    def setUp(self):
        self.assertEqual(self.control("POST", "reset")[0], 204)
        if self.needs_token:
            self.token = self.get_token()

    def control(self, method, name, body=None):
        return http(method, f"{self.url}/__sandbox/{name}", body)

    def grant(self, **overrides):
        return http("POST", f"{self.url}/oauth/v2/token?{grant_query(**overrides)}")

    def get_token(self):
        status, _, body = self.grant()
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def api(self, method, path, body=None, token=None, headers=None, **kwargs):
        auth = {"Authorization": f"Zoho-oauthtoken {token or self.token}", **(headers or {})}
        return http(method, f"{self.url}/api/v2{path}", body, headers=auth, **kwargs)

    def create(self, **overrides):
        status, _, body = self.api("POST", f"{ORG}/sessions.json", session_body(**overrides))
        self.assertEqual(status, 201, body)
        return body["session"]

    def fault(self, operation, kind, **options):
        status, _, body = self.control("POST", "faults", {"operation": operation, "kind": kind, **options})
        self.assertEqual(status, 201, body)
        return body

    def calls(self):
        return self.control("GET", "calls")[2]

    def stored(self):
        return self.control("GET", "meetings")[2]

    def token_stats(self):
        return self.control("GET", "tokens")[2]

    def assertZohoError(self, response, status, code, message=None):
        got_status, _, body = response
        self.assertEqual(got_status, status, body)
        self.assertEqual(set(body), {"error"}, body)
        self.assertEqual(body["error"]["code"], code, body)
        if message is not None:
            self.assertEqual(body["error"]["message"], message)


class TokenTest(SandboxTestCase):
    needs_token = False

    def test_grant_from_query_and_form_body(self):
        status, headers, body = self.grant()
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        self.assertEqual({k: v for k, v in body.items() if k != "access_token"},
                         {"api_domain": "https://www.zohoapis.com", "token_type": "Bearer", "expires_in": 3600})
        self.assertRegex(body["access_token"], r"^1000\.[0-9a-f]{32}\.[0-9a-f]{32}$")

        status, _, form = http("POST", f"{self.url}/oauth/v2/token", data=grant_query().encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, form)
        self.assertNotEqual(form["access_token"], body["access_token"])
        self.assertEqual(self.api("GET", "/user.json", token=form["access_token"])[0], 200)
        issued = self.control("GET", "issued")[2]
        self.assertEqual(issued["accessTokens"][-2:], [body["access_token"], form["access_token"]])  # kept across resets
        self.assertEqual((issued["refreshTokens"], issued["clientSecrets"]), ([REFRESH_TOKEN], [CLIENT_SECRET]))
        self.assertEqual(self.token_stats(), {"issued": 2, "refused": 0, "faulted": 0, "maxInWindow": 2,
                                              "limit": 10, "windowSeconds": 600, "live": 2})

    def test_errors_answer_200_with_an_error_field(self):
        cases = [
            ({"client_secret": "wrong-secret"}, "invalid_client"),
            ({"client_id": "1000.OTHER"}, "invalid_client"),
            ({"client_id": MISSING}, "invalid_client"),
            ({"refresh_token": "1000.wrong-refresh"}, "invalid_code"),
            ({"refresh_token": MISSING}, "invalid_code"),
            ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
            ({"grant_type": MISSING}, "unsupported_grant_type"),
        ]
        before = self.control("GET", "issued")[2]["accessTokens"]
        for overrides, error in cases:
            with self.subTest(overrides=overrides):
                self.assertEqual(self.grant(**overrides)[::2], (200, {"error": error}))
        self.assertEqual(self.token_stats()["issued"], 0)
        self.assertEqual(self.control("GET", "issued")[2]["accessTokens"], before)
        self.assertEqual(http("GET", f"{self.url}/oauth/v2/token?{grant_query()}")[0], 405)

    def test_user_details(self):
        token = self.get_token()
        status, _, body = self.api("GET", "/user.json", token=token)
        self.assertEqual((status, body), (200, {"userDetails": {
            "zuid": ZUID, "zsoid": ZSOID, "primaryEmail": "host@sandbox.invalid", "displayName": "Sandbox Host"}}))

    def test_auth_failures(self):
        token = self.get_token()
        url = f"{self.url}/api/v2/user.json"
        cases = [
            {},
            {"Authorization": f"Bearer {token}"},
            {"Authorization": token},
            {"Authorization": "Zoho-oauthtoken 1000.unknown.token"},
            {"Authorization": "Zoho-oauthtoken "},
        ]
        for headers in cases:
            with self.subTest(headers=headers):
                self.assertEqual(http("GET", url, headers=headers)[::2], (401, INVALID_TOKEN))
        self.assertEqual(http("GET", url, headers={"Authorization": f"ZOHO-OAUTHTOKEN {token}"})[0], 200)

    def test_auth_is_checked_before_validation(self):
        self.get_token()
        status, _, body = http("POST", f"{self.url}/api/v2{ORG}/sessions.json", {"session": {}})
        self.assertEqual((status, body), (401, INVALID_TOKEN))
        self.assertEqual(self.calls()["requests"][-1]["valid"], False)  # still recorded
        status, _, body = self.api("POST", "/999/sessions.json", session_body(), token="nope")
        self.assertEqual((status, body), (401, INVALID_TOKEN))

    def test_revoke_invalidates_every_token_issued_so_far(self):
        first, second = self.get_token(), self.get_token()
        self.assertEqual(self.control("POST", "revoke")[:3:2], (204, None))
        for token in (first, second):
            self.assertEqual(self.api("GET", "/user.json", token=token)[::2], (401, INVALID_TOKEN))
        self.assertEqual(self.token_stats()["live"], 0)
        self.assertEqual(self.api("GET", "/user.json", token=self.get_token())[0], 200)

    def test_reset_forgets_tokens_but_keeps_the_issued_list(self):
        token = self.get_token()
        self.control("POST", "reset")
        self.assertEqual(self.api("GET", "/user.json", token=token)[::2], (401, INVALID_TOKEN))
        self.assertEqual(self.token_stats(), {"issued": 0, "refused": 0, "faulted": 0, "maxInWindow": 0,
                                              "limit": 10, "windowSeconds": 600, "live": 0})
        self.assertIn(token, self.control("GET", "issued")[2]["accessTokens"])


class TokenLimitTest(SandboxTestCase):
    """A small limit and window keep this fast: 3 tokens per 2 s, tokens live 1 s."""

    extra_args = ("--token-limit", "3", "--token-window", "2", "--token-ttl", "1")
    needs_token = False

    def test_limit_per_rolling_window(self):
        for _ in range(3):
            self.get_token()
        third_issued = time.monotonic()  # at the latest
        self.assertEqual(self.grant()[::2], (400, TOKEN_LIMIT))
        self.assertEqual(self.grant(client_secret="wrong")[::2], (200, {"error": "invalid_client"}))
        self.assertEqual(self.token_stats(), {"issued": 3, "refused": 1, "faulted": 0, "maxInWindow": 3,
                                              "limit": 3, "windowSeconds": 2, "live": 3})
        time.sleep(max(0, third_issued + 2.05 - time.monotonic()))
        for _ in range(3):
            self.get_token()
        self.assertEqual(self.grant()[0], 400)
        stats = self.token_stats()
        self.assertEqual((stats["issued"], stats["refused"], stats["maxInWindow"]), (6, 2, 3))
        self.assertEqual([r["status"] for r in self.calls()["requests"]], [200, 200, 200, 400, 200, 200, 200, 200, 400])

    def test_failed_grants_do_not_count_and_reset_clears_the_window(self):
        for _ in range(5):
            self.assertEqual(self.grant(refresh_token="other")[::2], (200, {"error": "invalid_code"}))
        for _ in range(3):
            self.get_token()
        self.assertEqual(self.grant()[0], 400)
        self.control("POST", "reset")
        self.get_token()
        self.assertEqual(self.token_stats()["issued"], 1)

    def test_tokens_expire_in_real_time(self):
        status, _, body = self.grant()
        self.assertEqual(body["expires_in"], 1)
        self.assertEqual(self.api("GET", "/user.json", token=body["access_token"])[0], 200)
        time.sleep(1.1)
        self.assertEqual(self.api("GET", "/user.json", token=body["access_token"])[::2], (401, INVALID_TOKEN))
        self.assertEqual(self.token_stats()["live"], 0)


class SessionsTest(SandboxTestCase):
    def test_create_answers_like_zoho(self):
        status, headers, body = self.api("POST", f"{ORG}/sessions.json", session_body())
        self.assertEqual(status, 201, body)
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        session = body["session"]
        key = session["meetingKey"]
        self.assertIsInstance(key, int)
        self.assertEqual(len(str(key)), 10)
        self.assertRegex(session["sysId"], r"^\d{18}$")
        self.assertRegex(session["startLink"], rf"^{re.escape(self.url)}/meeting/start\?key={key}&token=[\w-]{{24,}}$")
        self.assertRegex(session["joinLink"], rf"^{re.escape(self.url)}/meeting/join\?key={key}$")  # no password
        self.assertRegex(session["pwd"], r"^[\w-]{12,}$")
        self.assertRegex(session["encryptPwd"], r"^[\w-]{24,}$")
        self.assertNotIn("createdTimeMillisec", session)
        created = int(self.stored()["meetings"][0]["createdTimeMillisec"])
        self.assertLess(abs(created - time.time() * 1000), 10_000)
        start = utc_ms(2031, 1, 15, 9, 0)  # 10:00 in Berlin is 09:00 UTC in winter
        self.assertEqual(
            {k: v for k, v in session.items() if k not in ("meetingKey", "sysId", "startLink", "joinLink",
                                                           "pwd", "encryptPwd")},
            {
                "topic": "Video consultation", "agenda": "Follow-up", "presenter": ZUID,
                "presenterEmail": "host@sandbox.invalid",
                "startTime": "Jan 15, 2031 10:00 AM CET", "endTime": "Jan 15, 2031 10:30 AM CET",
                "startTimeMillisec": str(start), "endTimeMillisec": str(start + 1800000),
                "duration": 1800000, "timezone": "Europe/Berlin",
                "participants": [{"email": "patient@example.com"}], "status": "upcoming",
            },
        )
        self.assertEqual(without_created(self.stored()), {"meetings": [session], "deleted": []})
        issued = self.control("GET", "issued")[2]["linkTokens"]
        self.assertIn(session["startLink"].split("token=")[1], issued)
        self.assertIn(session["pwd"], issued)
        last = self.calls()["requests"][-1]
        self.assertIsInstance(last.pop("at"), float)
        self.assertEqual(last, {"operation": CREATE, "status": 201, "valid": True, "errors": [], "fault": None,
                                "zsoid": ZSOID})

    def test_time_formatting(self):
        cases = [
            ("Jul 15, 2031 10:00 AM", "Europe/Berlin", "Jul 15, 2031 10:00 AM CEST", (2031, 7, 15, 8, 0)),
            ("Dec 01, 2031 11:30 PM", "America/New_York", "Dec 01, 2031 11:30 PM EST", (2031, 12, 2, 4, 30)),
            ("Feb 03, 2032 12:05 AM", "UTC", "Feb 03, 2032 12:05 AM UTC", (2032, 2, 3, 0, 5)),
            # a local time that does not exist (spring forward) is read with the offset before the change
            ("Mar 30, 2031 02:30 AM", "Europe/Berlin", "Mar 30, 2031 03:30 AM CEST", (2031, 3, 30, 1, 30)),
        ]
        for sent, zone, shown, utc in cases:
            with self.subTest(zone=zone, sent=sent):
                session = self.create(startTime=sent, timezone=zone, duration=60000)
                self.assertEqual((session["startTime"], session["startTimeMillisec"]), (shown, str(utc_ms(*utc))))
                self.assertEqual(int(session["endTimeMillisec"]) - int(session["startTimeMillisec"]), 60000)
        across = self.create(startTime="Jan 15, 2031 11:00 PM", duration=7200000)
        self.assertEqual(across["endTime"], "Jan 16, 2031 01:00 AM CET")
        self.assertEqual(self.create(presenter=str(ZUID), agenda=MISSING, participants=MISSING)["agenda"], "")

    def test_get_returns_the_same_session_with_fixed_links(self):
        created = self.create()
        for _ in range(2):
            status, _, body = self.api("GET", f"{ORG}/sessions/{created['meetingKey']}.json")
            self.assertEqual((status, body), (200, {"session": created}))

    def test_update_is_a_full_edit(self):
        created = self.create()
        path = f"{ORG}/sessions/{created['meetingKey']}.json"
        edit = session_body(topic="Second visit", agenda=MISSING, startTime="Feb 01, 2031 09:15 AM",
                            duration=2700000, timezone="Europe/London", participants=[])
        status, _, body = self.api("PUT", path, edit)
        self.assertEqual(status, 200, body)
        updated = body["session"]
        for name in ("meetingKey", "sysId", "startLink", "joinLink", "pwd", "encryptPwd", "presenter"):
            self.assertEqual(updated[name], created[name], name)
        self.assertEqual(
            (updated["topic"], updated["agenda"], updated["startTime"], updated["endTime"], updated["duration"],
             updated["timezone"], updated["participants"], updated["startTimeMillisec"]),
            ("Second visit", "", "Feb 01, 2031 09:15 AM GMT", "Feb 01, 2031 10:00 AM GMT", 2700000,
             "Europe/London", [], str(utc_ms(2031, 2, 1, 9, 15))),
        )
        self.assertEqual(self.api("GET", path)[2], {"session": updated})
        self.assertZohoError(self.api("PUT", path, session_body(topic=MISSING)), 400, 7001, "Invalid input: session.topic")
        self.assertZohoError(self.api("PUT", f"{ORG}/sessions/1234567890.json", edit), 404, 7004)

    def test_delete(self):
        created = self.create()
        kept = self.create()
        path = f"{ORG}/sessions/{created['meetingKey']}.json"
        status, headers, body = self.api("DELETE", path)
        self.assertEqual((status, body), (204, None))
        self.assertZohoError(self.api("GET", path), 404, 7004)
        self.assertZohoError(self.api("DELETE", path), 404, 7004)
        self.assertZohoError(self.api("PUT", path, session_body()), 404, 7004)
        self.assertEqual(without_created(self.stored()), {"meetings": [kept], "deleted": [created["meetingKey"]]})
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json")[2], {"session": [listed(kept)]})

    def test_unknown_meetings_and_organizations(self):
        for key in ("1234567890", "abc", "0"):
            with self.subTest(key=key):
                self.assertZohoError(self.api("GET", f"{ORG}/sessions/{key}.json"), 404, 7004)
        created = self.create()
        other = "/87654321"
        for method, path, body in (
            ("POST", f"{other}/sessions.json", session_body()),
            ("GET", f"{other}/sessions.json", None),
            ("GET", f"{other}/sessions/{created['meetingKey']}.json", None),
            ("PUT", f"{other}/sessions/{created['meetingKey']}.json", session_body()),
            ("DELETE", f"{other}/sessions/{created['meetingKey']}.json", None),
            ("GET", f"/0{ZSOID}/sessions.json", None),
        ):
            with self.subTest(method=method, path=path):
                self.assertZohoError(self.api(method, path, body), 403, 7005)
        self.assertEqual(len(self.stored()["meetings"]), 1)

    def test_list_paging_and_order(self):
        days = [4, 2, 5, 1, 3]
        created = {day: self.create(startTime=f"Jan {day:02d}, 2031 10:00 AM") for day in days}
        twin = self.create(startTime="Jan 03, 2031 10:00 AM")  # same start: ordered by meetingKey
        third = sorted([created[3], twin], key=lambda s: s["meetingKey"])
        ordered = [listed(s) for s in (created[1], created[2], *third, created[4], created[5])]
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json")[::2], (200, {"session": ordered}))
        for query, expected in (
            ("index=1&count=2", ordered[:2]),
            ("index=3&count=2", ordered[2:4]),
            ("index=5&count=2", ordered[4:]),
            ("index=6&count=100", ordered[5:]),
            ("index=7", []),
            ("count=1", ordered[:1]),
            ("listtype=all&index=2&count=100", ordered[1:]),
        ):
            with self.subTest(query=query):
                self.assertEqual(self.api("GET", f"{ORG}/sessions.json?{query}")[::2], (200, {"session": expected}))

    def test_list_types_and_status(self):
        past = self.create(startTime="Jan 15, 2020 10:00 AM")
        upcoming = self.create()
        self.assertEqual(past["status"], "completed")
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json?listtype=past")[2], {"session": [listed(past)]})
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json?listtype=upcoming")[2], {"session": [listed(upcoming)]})
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json?listtype=all")[2],
                         {"session": [listed(past), listed(upcoming)]})
        self.assertEqual(http("GET", upcoming["startLink"])[0], 200)
        started = self.api("GET", f"{ORG}/sessions.json?listtype=upcoming")[2]["session"]
        self.assertEqual([s["meetingKey"] for s in started], [upcoming["meetingKey"]])
        self.assertEqual(self.api("GET", f"{ORG}/sessions/{upcoming['meetingKey']}.json")[2]["session"]["status"],
                         "started")
        self.api("DELETE", f"{ORG}/sessions/{upcoming['meetingKey']}.json")
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json?listtype=upcoming")[2], {"session": []})

    def test_start_and_join_pages(self):
        created = self.create()
        key = created["meetingKey"]
        status, headers, page = http("GET", created["joinLink"])
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(f"Zoho sandbox: join page for meeting {key}", page)
        self.assertEqual(self.stored()["meetings"][0]["status"], "upcoming")
        token = created["startLink"].split("token=")[1]
        self.assertEqual(http("GET", f"{self.url}/meeting/join?key={key}&pwd={created['pwd']}")[0], 200)
        for url in (f"{self.url}/meeting/join?key={key}&pwd=wrong", f"{self.url}/meeting/join?key=1",
                    f"{self.url}/meeting/start?key={key}&token=forged", f"{self.url}/meeting/start?key=1&token={token}",
                    f"{self.url}/meeting/start?token={token}", f"{self.url}/meeting/start?key={key}&token=%C3%A9"):
            with self.subTest(url=url):
                self.assertEqual(http("GET", url)[0], 403)
        status, _, page = http("GET", created["startLink"])
        self.assertEqual(status, 200)
        self.assertIn(f"Zoho sandbox: host start page for meeting {key}", page)
        self.assertNotIn(token, page)
        self.assertEqual(self.stored()["meetings"][0]["status"], "started")

    def test_unknown_routes_methods_and_chunked_bodies(self):
        self.assertEqual(self.api("GET", f"{ORG}/meetings.json")[::2], (404, {"error": {"code": 404, "message": "Not found"}}))
        self.assertEqual(self.api("GET", f"{ORG}/sessions/.json")[0], 404)
        status, headers, body = self.api("PATCH", f"{ORG}/sessions/1234567890.json")
        self.assertEqual((status, body), (405, {"error": {"code": 405, "message": "Method Not Allowed"}}))
        self.assertEqual(headers["Allow"], "GET, PUT, DELETE")
        self.assertEqual(self.api("POST", "/user.json")[1]["Allow"], "GET")
        self.assertEqual(http("GET", f"{self.url}/__sandbox/nothing")[0], 404)
        self.assertEqual(self.calls()["unrouted"][0], {"method": "GET", "path": f"/api/v2{ORG}/meetings.json", "status": 404})

        connection = HTTPConnection(urllib.parse.urlsplit(self.url).netloc, timeout=10)
        try:
            connection.request("POST", f"/api/v2{ORG}/sessions.json", body=iter([json.dumps(session_body()).encode()]),
                               headers={"Authorization": f"Zoho-oauthtoken {self.token}",
                                        "Content-Type": "application/json"}, encode_chunked=True)
            response = connection.getresponse()
            self.assertEqual((response.status, json.loads(response.read())),
                             (411, {"error": {"code": 411, "message": "Length Required"}}))
        finally:
            connection.close()
        self.assertEqual(self.stored()["meetings"], [])


class ValidationTest(SandboxTestCase):
    def assertInvalid(self, response, field):
        self.assertZohoError(response, 400, 7001, f"Invalid input: {field}")

    def test_every_session_rule(self):
        cases = [
            ({"topic": MISSING}, "session.topic"),
            ({"topic": ""}, "session.topic"),
            ({"topic": "t" * 201}, "session.topic"),
            ({"topic": 42}, "session.topic"),
            ({"agenda": "a" * 2001}, "session.agenda"),
            ({"agenda": None}, "session.agenda"),
            ({"presenter": MISSING}, "session.presenter"),
            ({"presenter": 11111111}, "session.presenter"),
            ({"presenter": f"{ZUID}x"}, "session.presenter"),
            ({"presenter": f"0{ZUID}"}, "session.presenter"),
            ({"presenter": float(ZUID)}, "session.presenter"),
            ({"startTime": MISSING}, "session.startTime"),
            ({"startTime": "2031-01-15T10:00:00"}, "session.startTime"),
            ({"startTime": "Jan 5, 2031 10:00 AM"}, "session.startTime"),
            ({"startTime": "jan 15, 2031 10:00 AM"}, "session.startTime"),
            ({"startTime": "Jan 15, 2031 10:00"}, "session.startTime"),
            ({"startTime": "Jan 15, 2031 13:00 PM"}, "session.startTime"),
            ({"startTime": "Jan 15, 2031 10:00 AM CET"}, "session.startTime"),
            ({"startTime": 1795251600000}, "session.startTime"),
            ({"duration": MISSING}, "session.duration"),
            ({"duration": 0}, "session.duration"),
            ({"duration": -60000}, "session.duration"),
            ({"duration": 90000}, "session.duration"),
            ({"duration": 86400000 + 60000}, "session.duration"),
            ({"duration": "3600000"}, "session.duration"),
            ({"duration": 3600000.0}, "session.duration"),
            ({"duration": True}, "session.duration"),
            ({"timezone": MISSING}, "session.timezone"),
            ({"timezone": "Mars/Olympus_Mons"}, "session.timezone"),
            ({"timezone": ""}, "session.timezone"),
            ({"timezone": "Europe"}, "session.timezone"),
            ({"timezone": 1}, "session.timezone"),
            ({"participants": "patient@example.com"}, "session.participants"),
            ({"participants": ["patient@example.com"]}, "session.participants[0]"),
            ({"participants": [{"email": "a@example.com"}, {"mail": "b@example.com"}]}, "session.participants[1].email"),
            ({"start_time": "Jan 15, 2031 10:00 AM"}, "session.start_time"),
            ({"startTime": MISSING, "start_time": "Jan 15, 2031 10:00 AM"}, "session.start_time"),
        ]
        for override, field in cases:
            with self.subTest(override=override):
                status, _, body = self.api("POST", f"{ORG}/sessions.json", session_body(**override))
                self.assertInvalid((status, None, body), field)
                self.assertNotIn("Olympus", json.dumps(body))  # values are never echoed
        calls = self.calls()
        self.assertEqual(calls["invalid"], len(cases))
        self.assertEqual(calls["succeeded"][CREATE], 0)
        last = calls["requests"][-1]
        self.assertEqual((last["valid"], [e["field"] for e in last["errors"]]),
                         (False, ["session.start_time", "session.startTime"]))
        self.assertEqual(self.stored()["meetings"], [])
        self.assertEqual(self.create(duration=86400000, topic="t" * 200, agenda="a" * 2000)["duration"], 86400000)

    def test_body_rules(self):
        url = f"{self.url}/api/v2{ORG}/sessions.json"
        auth = {"Authorization": f"Zoho-oauthtoken {self.token}"}
        good = json.dumps(session_body()).encode()
        cases = [
            (good, "text/plain", "Content-Type"),
            (good, None, "Content-Type"),
            (b'{"session": ', "application/json", "body"),
            (b"", "application/json", "body"),
            (b"\xff", "application/json", "body"),
            (b"{}", "application/json", "session"),
            (b'{"session": []}', "application/json", "session"),
            (b"[1]", "application/json", "session"),
        ]
        for data, content_type, field in cases:
            with self.subTest(data=data, content_type=content_type):
                headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
                self.assertInvalid(http("POST", url, data=data, headers=headers), field)
        headers = {**auth, "Content-Type": "Application/JSON; charset=utf-8"}
        self.assertEqual(http("POST", url, data=good, headers=headers)[0], 201)

    def test_list_query_rules(self):
        for query, field in (("listtype=bogus", "listtype"), ("listtype=ALL", "listtype"), ("index=0", "index"),
                             ("index=x", "index"), ("index=-1", "index"), ("count=0", "count"),
                             ("count=101", "count"), ("count=ten", "count")):
            with self.subTest(query=query):
                self.assertInvalid(self.api("GET", f"{ORG}/sessions.json?{query}"), field)
        self.assertEqual(self.calls()["invalid"], 8)
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json?listtype=&index=")[0], 200)  # blank: the defaults
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json?listtype=upcoming&index=1&count=100")[0], 200)


class FaultsTest(SandboxTestCase):
    def test_status_fault_default_and_custom_body(self):
        self.fault(CREATE, "status")
        self.assertEqual(self.api("POST", f"{ORG}/sessions.json", session_body())[::2],
                         (500, {"error": {"code": 500, "message": "Internal server error"}}))
        self.fault(CREATE, "status", status=503, body={"error": {"code": 503, "message": "busy"}})
        self.assertEqual(self.api("POST", f"{ORG}/sessions.json", session_body())[::2],
                         (503, {"error": {"code": 503, "message": "busy"}}))
        self.assertEqual(self.stored()["meetings"], [])  # faulted requests have no effect
        self.create()  # rules are used up
        calls = self.calls()
        self.assertEqual((calls["counts"][CREATE], calls["succeeded"][CREATE]), (3, 1))
        self.assertEqual([r["fault"] for r in calls["requests"][1:]], ["status", "status", None])

    def test_times_and_clearing(self):
        path = f"{ORG}/sessions/1234567890.json"
        self.fault(GET, "status", status=502, times=2)
        self.assertEqual([self.api("GET", path)[0] for _ in range(3)], [502, 502, 404])
        self.fault(GET, "status", status=502, times=-1)
        self.assertEqual([self.api("GET", path)[0] for _ in range(3)], [502] * 3)
        self.assertEqual(len(self.control("GET", "faults")[2]["faults"]), 1)
        self.assertEqual(self.control("DELETE", "faults")[0], 204)
        self.assertEqual(self.api("GET", path)[0], 404)

    def test_delay(self):
        self.fault(USER, "delay", ms=300)
        started = time.monotonic()
        self.assertEqual(self.api("GET", "/user.json")[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)

    def test_rate_limit(self):
        for retry_after in ("7", "Wed, 21 Oct 2037 07:28:00 GMT"):
            with self.subTest(retry_after=retry_after):
                self.fault(LIST, "rate_limit", retryAfter=retry_after)
                status, headers, body = self.api("GET", f"{ORG}/sessions.json")
                self.assertEqual((status, body), (429, {"error": {"code": 429, "message": "Too many requests"}}))
                self.assertEqual(headers["Retry-After"], retry_after)
        self.fault(LIST, "rate_limit", retryAfter=None)
        status, headers, _ = self.api("GET", f"{ORG}/sessions.json")
        self.assertEqual((status, "Retry-After" in headers), (429, False))
        self.assertEqual(self.fault(TOKEN, "rate_limit")["fault"]["retryAfter"], "1")
        self.assertEqual(self.grant()[0], 429)

    def test_token_invalid_leaves_the_token_valid(self):
        self.fault(DELETE, "token_invalid")
        created = self.create()
        path = f"{ORG}/sessions/{created['meetingKey']}.json"
        self.assertEqual(self.api("DELETE", path)[::2], (401, INVALID_TOKEN))
        self.assertEqual(len(self.stored()["meetings"]), 1)
        self.assertEqual(self.api("DELETE", path)[0], 204)

    def test_too_many_is_neither_issued_nor_refused(self):
        self.fault(TOKEN, "too_many", times=2)
        self.assertEqual(self.grant()[::2], (400, TOO_MANY))
        self.assertEqual(self.grant()[::2], (400, TOO_MANY))
        self.get_token()
        stats = self.token_stats()
        self.assertEqual((stats["issued"], stats["refused"], stats["faulted"], stats["live"]), (2, 0, 2, 2))
        self.assertEqual([r["fault"] for r in self.calls()["requests"]], [None, "too_many", "too_many", None])

    def test_drop_after_performs_the_operation_but_loses_the_answer(self):
        self.fault(CREATE, "drop_after")
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            self.api("POST", f"{ORG}/sessions.json", session_body())
        self.assertEqual(len(self.stored()["meetings"]), 1)
        calls = self.calls()
        self.assertEqual((calls["requests"][-1]["fault"], calls["requests"][-1]["status"]), ("drop_after", 201))
        self.assertEqual((calls["counts"][CREATE], calls["succeeded"][CREATE]), (1, 0))

        before = len(self.control("GET", "issued")[2]["accessTokens"])
        self.fault(TOKEN, "drop_after")
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            self.grant()
        stats = self.token_stats()
        self.assertEqual((stats["issued"], stats["live"]), (2, 2))  # issued, though nobody got it
        self.assertEqual(len(self.control("GET", "issued")[2]["accessTokens"]), before + 1)

    def test_rule_validation(self):
        for rule in (
            [],
            {"operation": "GET /api/v2/users.json", "kind": "status"},
            {"operation": CREATE, "kind": "explode"},
            {"operation": CREATE, "kind": "status", "times": 0},
            {"operation": CREATE, "kind": "status", "times": "1"},
            {"operation": CREATE, "kind": "status", "status": 99},
            {"operation": CREATE, "kind": "delay"},
            {"operation": TOKEN, "kind": "token_invalid"},
            {"operation": CREATE, "kind": "too_many"},
        ):
            with self.subTest(rule=rule):
                self.assertEqual(self.control("POST", "faults", rule)[0], 400)
        self.assertEqual(http("POST", f"{self.url}/__sandbox/faults", data=b"{", headers={})[0], 400)
        self.assertEqual(self.control("GET", "faults")[2], {"faults": []})
        echoed = self.fault(UPDATE, "status", status=409)
        self.assertEqual(echoed, {"fault": {"operation": UPDATE, "kind": "status", "status": 409, "times": 1}})
        for operation in OPERATIONS:
            self.fault(operation, "drop_after")  # every key is accepted

    def test_counters_and_reset(self):
        created = self.create()
        self.api("GET", f"{ORG}/sessions/{created['meetingKey']}.json")
        self.api("GET", f"{ORG}/sessions/1234567890.json")
        self.api("POST", f"{ORG}/sessions.json", session_body(duration=1))
        self.fault(DELETE, "status", status=503)
        self.api("DELETE", f"{ORG}/sessions/{created['meetingKey']}.json")
        calls = self.calls()
        self.assertEqual(calls["counts"], {TOKEN: 1, USER: 0, CREATE: 2, LIST: 0, GET: 2, UPDATE: 0, DELETE: 1})
        self.assertEqual(calls["succeeded"], {TOKEN: 1, USER: 0, CREATE: 1, LIST: 0, GET: 1, UPDATE: 0, DELETE: 0})
        self.assertEqual(
            [(r["operation"], r["status"], r["valid"], r["fault"]) for r in calls["requests"]],
            [(TOKEN, 200, None, None), (CREATE, 201, True, None), (GET, 200, None, None), (GET, 404, None, None),
             (CREATE, 400, False, None), (DELETE, 503, None, "status")],
        )
        self.assertEqual(calls["invalid"], 1)

        self.fault(CREATE, "status", times=-1)
        self.assertEqual(self.control("POST", "reset")[0], 204)
        self.assertEqual(self.stored(), {"meetings": [], "deleted": []})
        self.assertEqual(self.control("GET", "faults")[2], {"faults": []})
        self.assertEqual((self.calls()["requests"], self.token_stats()["issued"]), ([], 0))
        self.assertEqual(self.api("GET", "/user.json")[0], 401)  # tokens forgotten
        self.token = self.get_token()
        self.create()  # the fault rule is gone
        self.assertGreaterEqual(len(self.control("GET", "issued")[2]["linkTokens"]), 4)  # kept across resets


class LogHygieneTest(SandboxTestCase):
    def test_no_secret_reaches_the_log(self):
        self.grant(client_secret="wrong-Secret_99")
        self.grant(refresh_token="1000.wrong-Refresh_99")
        created = self.create(topic="private topic", agenda="private agenda")
        key = created["meetingKey"]
        self.api("POST", f"{ORG}/sessions.json", session_body(timezone="Secret/Zone_99"))
        self.api("GET", f"{ORG}/sessions.json?listtype=upcoming&index=1&count=5")
        self.api("PUT", f"{ORG}/sessions/{key}.json", session_body(topic="private edit"))
        self.api("GET", "/user.json", token="1000.forged-Token_99")
        http("GET", created["joinLink"])
        http("GET", created["startLink"])
        http("GET", f"{self.url}/meeting/join?key={key}&pwd=guess-Pwd_99")
        self.fault(CREATE, "drop_after")
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            self.api("POST", f"{ORG}/sessions.json", session_body())
        self.fault(TOKEN, "drop_after")
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            self.grant()
        self.api("GET", f"{ORG}/sessions/{key}.json?token=leak_99")
        http("POST", f"{self.url}/oauth/v2/token?{grant_query()}", headers={"Transfer-Encoding": "chunked"}, data=b"")

        issued = self.control("GET", "issued")[2]
        self.assertGreaterEqual(len(issued["accessTokens"]), 2)  # setUp's and the dropped one
        self.assertGreaterEqual(len(issued["linkTokens"]), 4)
        secrets = [*issued["accessTokens"], *issued["linkTokens"], *issued["refreshTokens"], *issued["clientSecrets"],
                   "wrong-Secret_99", "1000.wrong-Refresh_99", "Secret/Zone_99", "1000.forged-Token_99", "guess-Pwd_99",
                   "leak_99", "private", "Zoho-oauthtoken", "token=", "pwd=", "refresh_token", "client_secret", "?"]
        log = self.sandbox.logs()
        for line in ("[zoho-sandbox] POST /oauth/v2/token 200", "[zoho-sandbox] POST /api/v2/{zsoid}/sessions.json 201",
                     "[zoho-sandbox] GET /api/v2/{zsoid}/sessions.json 200",
                     "[zoho-sandbox] PUT /api/v2/{zsoid}/sessions/{meetingKey}.json 200",
                     "[zoho-sandbox] GET /meeting/start 200", "[zoho-sandbox] GET /meeting/join 403",
                     "[zoho-sandbox] POST /api/v2/{zsoid}/sessions.json 400"):
            self.assertIn(line, log)
        for secret in secrets:
            self.assertNotIn(secret, log)


CLINIC_B = {"zsoid": 55550001, "clientId": "1000.CLIENT-B", "clientSecret": "csecret-B_99",
            "refreshToken": "1000.refresh-B_99", "presenters": [66660001, 66660002]}
ORG_B = f"/{CLINIC_B['zsoid']}"


class OrgsTest(SandboxTestCase):
    """Several organizations: their own client and refresh token, users (presenters) and sessions."""

    def add_clinic_b(self):
        status, _, body = self.control("POST", "orgs", CLINIC_B)
        self.assertEqual(status, 201, body)
        return body

    def token_b(self):
        status, _, body = self.grant(client_id="1000.CLIENT-B", client_secret="csecret-B_99",
                                     refresh_token="1000.refresh-B_99")
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def create_b(self, token, **overrides):
        status, _, body = self.api("POST", f"{ORG_B}/sessions.json",
                                   session_body(**{"presenter": CLINIC_B["presenters"][0], **overrides}), token=token)
        self.assertEqual(status, 201, body)
        return body["session"]

    def test_add_and_list_orgs_without_secrets(self):
        self.assertEqual(self.add_clinic_b(), {"zsoid": 55550001, "clientId": "1000.CLIENT-B",
                                               "presenters": [66660001, 66660002]})
        status, _, body = self.control("POST", f"orgs/{ZSOID}/presenters", {"zuid": 87654322})
        self.assertEqual((status, body["presenters"]), (201, [ZUID, 87654322]))
        orgs = self.control("GET", "orgs")[2]["orgs"]
        self.assertEqual([o["zsoid"] for o in orgs], [ZSOID, 55550001])
        for secret in (CLIENT_SECRET, REFRESH_TOKEN, "csecret-B_99", "1000.refresh-B_99"):
            self.assertNotIn(secret, json.dumps(orgs))
        issued = self.control("GET", "issued")[2]
        self.assertEqual(issued["refreshTokens"], [REFRESH_TOKEN, "1000.refresh-B_99"])
        self.assertEqual(issued["clientSecrets"], [CLIENT_SECRET, "csecret-B_99"])

    def test_org_control_errors(self):
        self.add_clinic_b()
        self.assertEqual(self.control("POST", "orgs", CLINIC_B)[0], 409)
        self.assertEqual(self.control("POST", "orgs", {**CLINIC_B, "zsoid": 55550002})[0], 409)  # refresh token
        self.assertEqual(self.control("POST", "orgs", {**CLINIC_B, "zsoid": 55550002, "refreshToken": "r",
                                                       "presenters": [ZUID]})[0], 409)  # zuid of another org
        self.assertEqual(self.control("POST", "orgs", {**CLINIC_B, "presenters": []})[0], 400)
        self.assertEqual(self.control("POST", "orgs", {**CLINIC_B, "zsoid": "x"})[0], 400)
        self.assertEqual(self.control("POST", "orgs/999/presenters", {"zuid": 1})[0], 404)
        self.assertEqual(self.control("POST", f"orgs/{ZSOID}/presenters", {"zuid": 66660001})[0], 409)
        self.assertEqual(self.control("POST", f"orgs/{ZSOID}/presenters", {"zuid": "abc"})[0], 400)

    def test_each_org_has_its_own_client_and_refresh_token(self):
        self.add_clinic_b()
        self.token_b()
        cases = [
            ({"client_id": "1000.CLIENT-B", "client_secret": "csecret-B_99"}, "invalid_code"),  # A's refresh token
            ({"refresh_token": "1000.refresh-B_99"}, "invalid_code"),  # A's client, B's refresh token
            ({"client_id": "1000.CLIENT-B", "refresh_token": "1000.refresh-B_99"}, "invalid_client"),
        ]
        for overrides, error in cases:
            with self.subTest(overrides=overrides):
                self.assertEqual(self.grant(**overrides)[::2], (200, {"error": error}))

    def test_tokens_work_only_for_their_own_org(self):
        self.add_clinic_b()
        token_b = self.token_b()
        a, b = self.create(), self.create_b(token_b)
        self.assertEqual((b["presenter"], b["presenterEmail"]), (66660001, "presenter-66660001@sandbox.invalid"))
        self.assertEqual((a["presenter"], a["presenterEmail"]), (ZUID, "host@sandbox.invalid"))
        user = self.api("GET", "/user.json", token=token_b)[2]["userDetails"]
        self.assertEqual((user["zuid"], user["zsoid"]), (66660001, 55550001))
        for token, org, key in ((self.token, ORG_B, b["meetingKey"]), (token_b, ORG, a["meetingKey"])):
            for method, path, body in (("POST", "/sessions.json", session_body()), ("GET", "/sessions.json", None),
                                       ("GET", f"/sessions/{key}.json", None), ("DELETE", f"/sessions/{key}.json", None),
                                       ("PUT", f"/sessions/{key}.json", session_body())):
                with self.subTest(org=org, method=method, path=path):
                    self.assertZohoError(self.api(method, f"{org}{path}", body, token=token), 403, 7005,
                                         "Organization not found")
        # Under its own zsoid, another org's meetingKey does not exist.
        self.assertZohoError(self.api("GET", f"{ORG_B}/sessions/{a['meetingKey']}.json", token=token_b), 404, 7004)
        self.assertEqual(self.api("GET", f"{ORG_B}/sessions.json", token=token_b)[2], {"session": [listed(b)]})
        self.assertEqual(self.api("GET", f"{ORG}/sessions.json")[2], {"session": [listed(a)]})
        self.assertEqual(len(self.stored()["meetings"]), 2)

    def test_presenter_must_be_a_user_of_the_org(self):
        self.add_clinic_b()
        token_b = self.token_b()
        invalid = (400, 7001, "Invalid input: session.presenter")
        self.assertZohoError(self.api("POST", f"{ORG_B}/sessions.json", session_body(), token=token_b), *invalid)
        self.assertZohoError(self.api("POST", f"{ORG}/sessions.json", session_body(presenter=66660001)), *invalid)
        self.assertEqual(self.calls()["requests"][-1]["valid"], False)
        second = self.create_b(token_b, presenter=66660002)
        self.assertEqual(second["presenter"], 66660002)
        path = f"{ORG_B}/sessions/{second['meetingKey']}.json"
        self.assertZohoError(self.api("PUT", path, session_body(presenter=ZUID), token=token_b), *invalid)
        status, _, moved = self.api("PUT", path, session_body(presenter="66660001"), token=token_b)
        self.assertEqual((status, moved["session"]["presenter"]), (200, 66660001))
        # The CLI org gains presenters through the control API.
        self.assertZohoError(self.api("POST", f"{ORG}/sessions.json", session_body(presenter=87654322)), *invalid)
        self.control("POST", f"orgs/{ZSOID}/presenters", {"zuid": 87654322})
        self.assertEqual(self.create(presenter=87654322)["presenterEmail"], "presenter-87654322@sandbox.invalid")

    def test_received_and_calls_name_the_org(self):
        self.add_clinic_b()
        token_b = self.token_b()
        self.create_b(token_b)
        self.api("GET", f"{ORG}/sessions.json", token=token_b)
        self.api("GET", f"{ORG}/sessions.json", token="1000.forged")
        self.grant(refresh_token="wrong")
        expected = [(TOKEN, ZSOID), (TOKEN, 55550001), (CREATE, 55550001), (LIST, 55550001), (LIST, None),
                    (TOKEN, None)]
        for entries in (self.control("GET", "received")[2]["requests"], self.calls()["requests"]):
            self.assertEqual([(r["operation"], r["zsoid"]) for r in entries], expected)

    def test_reset_forgets_added_orgs_and_presenters(self):
        self.add_clinic_b()
        self.control("POST", f"orgs/{ZSOID}/presenters", {"zuid": 87654322})
        self.assertEqual(self.control("POST", "reset")[0], 204)
        self.assertEqual(self.control("GET", "orgs")[2]["orgs"],
                         [{"zsoid": ZSOID, "clientId": CLIENT_ID, "presenters": [ZUID]}])
        self.assertEqual(self.grant(client_id="1000.CLIENT-B", client_secret="csecret-B_99",
                                    refresh_token="1000.refresh-B_99")[2], {"error": "invalid_client"})
        self.assertIn("1000.refresh-B_99", self.control("GET", "issued")[2]["refreshTokens"])  # kept

    def test_each_refresh_token_has_its_own_limit(self):
        self.add_clinic_b()
        for _ in range(9):  # with setUp's grant: the CLI org's ten
            self.get_token()
        self.assertEqual(self.grant()[0], 400)
        self.token_b()
        self.assertEqual(self.token_stats()["issued"], 10)  # the CLI org's refresh token


class ProcessTest(unittest.TestCase):
    def run_sandbox(self, *args):
        return subprocess.run([sys.executable, str(SANDBOX), *args], capture_output=True, text=True, timeout=30)

    def test_refuses_non_loopback_hosts_and_bad_arguments(self):
        required = ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--refresh-token", REFRESH_TOKEN,
                    "--zsoid", str(ZSOID)]
        for host in ("0.0.0.0", "192.168.1.10", "example.com", "localhost"):
            with self.subTest(host=host):
                result = self.run_sandbox("--host", host, "--port", "0", *required)
                self.assertEqual((result.returncode, result.stdout), (2, ""))
                self.assertIn("loopback", result.stderr)
        for args in (required[:-2], [*required, "--token-limit", "0"], [*required[:-1], "x"]):
            with self.subTest(args=args):
                result = self.run_sandbox("--port", "0", *args)
                self.assertEqual((result.returncode, result.stdout), (2, ""))
                self.assertNotIn(CLIENT_SECRET, result.stderr)

    def test_exits_cleanly_on_sigterm_and_sigint_and_defaults_the_zuid(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                sandbox = Sandbox()
                try:
                    self.assertEqual(http("GET", f"{sandbox.url}/__sandbox/calls")[0], 200)
                    self.assertEqual(sandbox.stop(sig), 0)
                    self.assertIn("[zoho-sandbox] stopped", sandbox.logs())
                finally:
                    sandbox.close()
        proc = subprocess.Popen(
            [sys.executable, str(SANDBOX), "--port", "0", "--host", "::1", "--client-id", CLIENT_ID, "--client-secret",
             CLIENT_SECRET, "--refresh-token", REFRESH_TOKEN, "--zsoid", str(ZSOID)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            line = proc.stdout.readline()
            if not line:  # no IPv6 loopback on this machine
                self.skipTest("::1 is not available")
            self.assertRegex(line, r"^READY http://\[::1\]:\d+\n$")
            url = line.split()[1]
            token = http("POST", f"{url}/oauth/v2/token?{grant_query()}")[2]["access_token"]
            user = http("GET", f"{url}/api/v2/user.json", headers={"Authorization": f"Zoho-oauthtoken {token}"})[2]
            self.assertRegex(str(user["userDetails"]["zuid"]), r"^[1-9]\d{7}$")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()


class ListIndexModeTest(SandboxTestCase):
    """`index` is undocumented: records from 1 (the default) or pages from 0, switched by a test."""

    def test_index_counts_records_from_1_or_pages_from_0(self):
        made = [listed(self.create(startTime=f"Jan {day:02d}, 2031 10:00 AM")) for day in range(1, 6)]
        page = lambda query: self.api("GET", f"{ORG}/sessions.json?{query}")  # noqa: E731
        self.assertEqual(page("index=3&count=2")[2], {"session": made[2:4]})
        self.assertInvalid(page("index=0&count=2"), "index")
        self.assertEqual(self.control("POST", "index-mode", {"mode": "pages-from-0"})[0], 204)
        for query, expected in (("index=0&count=2", made[:2]), ("index=1&count=2", made[2:4]),
                                ("index=2&count=2", made[4:]), ("index=3&count=2", []), ("count=3", made[:3])):
            with self.subTest(query=query):
                self.assertEqual(page(query)[2], {"session": expected})
        self.assertEqual(self.control("POST", "index-mode", {"mode": "pages"})[0], 400)
        self.control("POST", "reset")  # back to records from 1 (and a new token)
        self.token = self.get_token()
        self.assertInvalid(page("index=0"), "index")

    def assertInvalid(self, response, field):
        self.assertZohoError(response, 400, 7001, f"Invalid input: {field}")


class ThrottleFaultTest(SandboxTestCase):
    def test_throttle_answers_200_or_400_in_english_or_chinese(self):
        for status, lang, body in ((400, "en", TOO_MANY), (200, "en", TOO_MANY), (200, "zh", TOO_MANY_ZH),
                                   (400, "zh", TOO_MANY_ZH)):
            with self.subTest(status=status, lang=lang):
                self.fault(CREATE, "throttle", status=status, lang=lang)
                self.assertEqual(self.api("POST", f"{ORG}/sessions.json", session_body())[::2], (status, body))
                self.fault(TOKEN, "throttle", status=status, lang=lang)
                self.assertEqual(self.grant()[::2], (status, body))
        self.assertEqual(self.stored()["meetings"], [], "a throttled create makes nothing")
        self.assertEqual(self.token_stats()["faulted"], 4)
        self.assertEqual(self.fault(LIST, "throttle")["fault"], {"operation": LIST, "kind": "throttle", "times": 1,
                                                                 "status": 400, "lang": "en"})
        for bad in ({"status": 429}, {"lang": "fr"}):
            status, _, _ = self.control("POST", "faults", {"operation": LIST, "kind": "throttle", **bad})
            self.assertEqual(status, 400, bad)


class SeedTest(SandboxTestCase):
    def test_seeded_sessions_are_listed_like_created_ones(self):
        session = session_body(agenda="telemeet:other:mtg_1:1800000000")["session"]
        status, _, body = self.control("POST", "seed", {"count": 3, "session": session})
        self.assertEqual((status, len(body["meetingKeys"])), (201, 3), body)
        listed_keys = [s["meetingKey"] for s in self.api("GET", f"{ORG}/sessions.json")[2]["session"]]
        self.assertEqual(sorted(listed_keys), sorted(body["meetingKeys"]))
        got = self.api("GET", f"{ORG}/sessions/{listed_keys[0]}.json")[2]["session"]
        self.assertEqual((got["agenda"], got["presenter"]), (session["agenda"], ZUID))
        for bad in ({"count": 0, "session": session}, {"count": 1, "session": {**session, "timezone": "Mars/Base"}},
                    {"count": 2}):
            self.assertEqual(self.control("POST", "seed", bad)[0], 400, bad)

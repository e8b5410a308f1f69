"""Zoho sandbox: a loopback stand-in for Zoho Accounts (OAuth refresh-token grant) and the Zoho
Meeting REST API subset telemeet uses, on one port. It enforces Zoho's "10 access tokens per
refresh token per 10 minutes" limit, validates requests, answers with Zoho-shaped bodies, and
lets tests inject faults and read what it received through the control API under /__sandbox/
(see README.md). Stdlib only.

    python sandbox.py --port 0 --client-id CID --client-secret CSECRET --refresh-token RT --zsoid 12345678
"""

import argparse
import re
import secrets
import sys
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # infra/: sandbox_common
from sandbox_common import (  # noqa: E402
    BaseSandbox, Reply, argument_parser, check_loopback, form_params, is_int, random_digits, serve, start_logging,
)

# Operation keys: method + templated path, as reported by /__sandbox/calls and used by faults.
TOKEN = "POST /oauth/v2/token"
USER = "GET /api/v2/user.json"
CREATE = "POST /api/v2/{zsoid}/sessions.json"
LIST = "GET /api/v2/{zsoid}/sessions.json"
GET = "GET /api/v2/{zsoid}/sessions/{meetingKey}.json"
UPDATE = "PUT /api/v2/{zsoid}/sessions/{meetingKey}.json"
DELETE = "DELETE /api/v2/{zsoid}/sessions/{meetingKey}.json"
OPERATIONS = [TOKEN, USER, CREATE, LIST, GET, UPDATE, DELETE]
API_OPERATIONS = OPERATIONS[1:]

FAULT_KINDS = {"status", "delay", "hold", "rate_limit", "token_invalid", "too_many", "drop_after", "throttle"}
FAULT_SCOPE = {"token_invalid": API_OPERATIONS, "too_many": [TOKEN]}  # other kinds: every operation

HOST_EMAIL = "host@sandbox.invalid"
API_DOMAIN = "https://www.zohoapis.com"
START_FORMAT = "%b %d, %Y %I:%M %p"  # what clients send: "Nov 21, 2026 10:00 AM"
SHOWN_FORMAT = START_FORMAT + " %Z"  # what the sandbox answers: "Nov 21, 2026 10:00 AM CET"
MAX_DURATION = 24 * 60 * 60 * 1000  # ms
SESSION_FIELDS = ["topic", "agenda", "presenter", "startTime", "duration", "timezone", "participants"]
LIST_TYPES = {"upcoming", "past", "all"}
YEARS = range(1970, 9999)  # start years accepted (keeps every end time representable)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

TOO_MANY = {
    "error": "Access Denied",
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "status": "failure",
}
# The same throttle answer localised, as third-party code has seen it (which data centre sends it is
# not documented).
TOO_MANY_ZH = {"error": "拒绝访问", "error_description": "您已连续提出过多请求，请稍后再试。", "status": "failure"}
# Zoho Accounts' answer once a refresh token's 10 tokens per 10 minutes are spent (token-limits page).
TOKEN_LIMIT = {
    "error": "Access Denied",
    "error_description": "Token creation throttle limit reached. Please reuse the valid tokens you currently have.",
}
THROTTLE_BODIES = {"en": TOO_MANY, "zh": TOO_MANY_ZH}
INVALID_TOKEN = {"error": {"code": 2000, "message": "INVALID_OAUTHTOKEN"}}
# What `index` of the list counts (undocumented): records from 1, or pages (of `count`) from 0.
INDEX_MODES = {"records-from-1", "pages-from-0"}


def zoho_error(status, code, message):
    return Reply(status, {"error": {"code": code, "message": message}})


def meeting_not_found():
    return zoho_error(404, 7004, "Meeting does not exist")


def epoch_ms(dt):
    return (dt - EPOCH) // timedelta(milliseconds=1)


def as_key(text):
    """A meetingKey from a path segment or query value, or None."""
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def find_zone(name):
    """ZoneInfo for a valid IANA name, else None."""
    if not isinstance(name, str) or not name or name != name.strip():
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


def parse_start(value):
    """naive datetime for a string exactly in START_FORMAT (zero-padded, English), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.strptime(value, START_FORMAT)
    except ValueError:
        return None
    return parsed if parsed.strftime(START_FORMAT) == value and parsed.year in YEARS else None


def bad_field(field, problem):
    return {"field": field, "message": problem}


def session_errors(session, presenters):
    """Validation errors of a create/update "session" object, unknown keys first (client typos)."""
    errors = [bad_field(f"session.{key}", "Unknown field.") for key in sorted(set(session) - set(SESSION_FIELDS))]
    for name in ("topic", "presenter", "startTime", "duration", "timezone"):
        if name not in session:
            errors.append(bad_field(f"session.{name}", "Required field is missing."))
    topic = session.get("topic", "x")
    if not (isinstance(topic, str) and 1 <= len(topic) <= 200):
        errors.append(bad_field("session.topic", "Must be a string of 1 to 200 characters."))
    if not (isinstance(session.get("agenda", ""), str) and len(session.get("agenda", "")) <= 2000):
        errors.append(bad_field("session.agenda", "Must be a string of at most 2000 characters."))
    presenter = session.get("presenter", presenters[0] if presenters else 0)
    if not ((is_int(presenter) or isinstance(presenter, str)) and str(presenter) in map(str, presenters)):
        errors.append(bad_field("session.presenter", "Must be the zuid of a user of the organization."))
    if "startTime" in session and parse_start(session["startTime"]) is None:
        errors.append(bad_field("session.startTime", f"Must be formatted like {START_FORMAT}."))
    duration = session.get("duration", 60000)
    if not (is_int(duration) and 0 < duration <= MAX_DURATION and duration % 60000 == 0):
        errors.append(bad_field("session.duration", "Must be whole minutes in ms, at most 86400000."))
    if "timezone" in session and find_zone(session["timezone"]) is None:
        errors.append(bad_field("session.timezone", "Must be an IANA time zone name."))
    participants = session.get("participants", [])
    if not isinstance(participants, list):
        errors.append(bad_field("session.participants", "Must be a list."))
    else:
        for i, person in enumerate(participants):
            if not isinstance(person, dict):
                errors.append(bad_field(f"session.participants[{i}]", "Must be an object."))
            elif not isinstance(person.get("email"), str):
                errors.append(bad_field(f"session.participants[{i}].email", "Must be a string."))
    seen, unique = set(), []
    for error in errors:  # one entry per field: a missing field is not also "invalid"
        if error["field"] not in seen:
            seen.add(error["field"])
            unique.append(error)
    return unique


def body_errors(call, presenters):
    """Errors of a create/update request: Content-Type, JSON body, then the session's fields."""
    content_type = (call.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return [bad_field("Content-Type", "Must be application/json.")]
    try:
        body = call.json() if call.body else None
    except ValueError:
        body = None
    if body is None:
        return [bad_field("body", "Must be a JSON object.")]
    if not isinstance(body, dict) or not isinstance(body.get("session"), dict):
        return [bad_field("session", "Must be an object.")]
    return session_errors(body["session"], presenters)


def list_params(query, index_mode="records-from-1"):
    """(listtype, index, count) from the list query, or the errors. A page number may be 0."""
    errors, values = [], {}
    listtype = query.get("listtype", "all")
    if listtype not in LIST_TYPES:
        errors.append(bad_field("listtype", "Must be upcoming, past or all."))
    first_index = 0 if index_mode == "pages-from-0" else 1
    for name, default, low, top in (("index", first_index, first_index, None), ("count", 100, 1, 100)):
        raw = query.get(name, str(default))
        value = int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else -1
        if value < low or (top and value > top):
            errors.append(bad_field(name, f"Must be a whole number from {low}{f' to {top}' if top else ''}."))
        values[name] = value
    return errors, (listtype, values["index"], values["count"])


class TokenLimit:
    """Zoho's access-token throttle for one refresh token: at most `limit` tokens within any
    `window` seconds (rolling, monotonic clock). Not thread-safe: callers hold the sandbox lock."""

    def __init__(self, limit, window):
        self.limit, self.window = limit, window
        self.times = deque()  # issue times still inside the window
        self.issued = self.refused = self.faulted = self.max_in_window = 0

    def try_issue(self):
        now = time.monotonic()
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        if len(self.times) >= self.limit:
            self.refused += 1
            return False
        self.times.append(now)
        self.issued += 1
        self.max_in_window = max(self.max_in_window, len(self.times))
        return True


def positive_id(value):
    """A zsoid/zuid given as a JSON number or its exact digit string, else None."""
    if is_int(value) and value > 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,17}", value):
        return int(value)
    return None


def presenter_email(org, zuid):
    """The CLI organization's first user is host@sandbox.invalid; every other presenter gets its own."""
    return HOST_EMAIL if zuid == org.presenters[0] and org.cli else f"presenter-{zuid}@sandbox.invalid"


class Org:
    """One Zoho organization (zsoid): the OAuth client and refresh token it authorized, its users
    (presenters, zuids; the first answers user.json) and its refresh token's throttle."""

    def __init__(self, zsoid, client_id, client_secret, refresh_token, presenters, limit, cli=False):
        self.zsoid, self.client_id, self.client_secret = zsoid, client_id, client_secret
        self.refresh_token, self.presenters, self.limit, self.cli = refresh_token, presenters, limit, cli

    def public(self):
        return {"zsoid": self.zsoid, "clientId": self.client_id, "presenters": list(self.presenters)}


def parse_org(payload):
    """(zsoid, clientId, clientSecret, refreshToken, presenters) from POST /__sandbox/orgs, or an error."""
    if not isinstance(payload, dict):
        return None, "body must be a JSON object"
    zsoid = positive_id(payload.get("zsoid"))
    if zsoid is None:
        return None, "zsoid must be a positive integer"
    for name in ("clientId", "clientSecret", "refreshToken"):
        if not (isinstance(payload.get(name), str) and payload[name]):
            return None, f"{name} must be a non-empty string"
    presenters = payload.get("presenters")
    zuids = [positive_id(z) for z in presenters] if isinstance(presenters, list) else []
    if not zuids or None in zuids or len(set(zuids)) != len(zuids):
        return None, "presenters must be a non-empty list of distinct zuids (positive integers)"
    return (zsoid, payload["clientId"], payload["clientSecret"], payload["refreshToken"], zuids), None


class Sandbox(BaseSandbox):
    name = "zoho-sandbox"
    title = "Zoho sandbox"
    operations = OPERATIONS
    token_operation = TOKEN
    fault_kinds = FAULT_KINDS
    pages = {"GET /meeting/start": "start", "GET /meeting/join": "join"}
    extra_control = ["GET /__sandbox/tokens", "POST /__sandbox/revoke", "GET /__sandbox/orgs",
                     "POST /__sandbox/orgs", "POST /__sandbox/orgs/{zsoid}/presenters",
                     "POST /__sandbox/index-mode", "POST /__sandbox/seed"]

    def __init__(self, args):
        super().__init__()
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.refresh_token = args.refresh_token
        self.zsoid = args.zsoid
        self.zuid = args.zuid if args.zuid is not None else 10**7 + secrets.randbelow(9 * 10**7)
        self.token_ttl = args.token_ttl
        self.token_limit, self.token_window = args.token_limit, args.token_window
        # Every secret handed out or known, kept across resets so log-leak checks stay complete.
        self.issued = {
            "accessTokens": [], "linkTokens": [],
            "refreshTokens": [self.refresh_token], "clientSecrets": [self.client_secret],
        }
        self.reset()

    def reset(self):
        with self.lock:
            self.limit = TokenLimit(self.token_limit, self.token_window)  # the CLI org's refresh token's
            cli = Org(self.zsoid, self.client_id, self.client_secret, self.refresh_token, [self.zuid], self.limit,
                      cli=True)
            self.orgs = {self.zsoid: cli}  # zsoid -> Org; added ones are forgotten
            self.tokens = {}  # access token -> (expiry (monotonic seconds), zsoid); revoked ones removed
            self.meetings = {}  # meetingKey -> stored meeting (see create_session)
            self.deleted = {}  # meetingKey -> stored meeting
            self.index_mode = "records-from-1"
            self.reset_bookkeeping()

    # -- request preparation (callers hold no lock)

    def error_body(self, code, message):
        return {"error": {"code": code, "message": message}}

    def validate(self, call):
        if call.key in (CREATE, UPDATE):
            with self.lock:  # the path's organization; when it is not one, the token's (answered 403 anyway)
                org = self.orgs.get(as_key(call.params["zsoid"])) or self._token_org(call.headers) or self.orgs[self.zsoid]
                presenters = list(org.presenters)
            errors = body_errors(call, presenters)
        elif call.key == LIST:
            with self.lock:
                mode = self.index_mode
            errors = list_params(call.query, mode)[0]
        else:
            return [], None
        return errors, not errors

    def authenticate(self, headers):
        with self.lock:
            expiry = self._token(headers)[0]
        if expiry is None or time.monotonic() >= expiry:
            return Reply(401, INVALID_TOKEN)
        return None

    def request_context(self, call):
        """zsoid: the organization of the access token (for the grant: of the refresh token granted)."""
        with self.lock:
            org = self._granted_org(call) if call.key == TOKEN else self._token_org(call.headers)
        return {"zsoid": org.zsoid if org else None}

    # -- helpers (called with self.lock held)

    def _token(self, headers):
        """(expiry, zsoid) of the request's access token, (None, None) for none we issued."""
        scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
        return self.tokens.get(token.strip(), (None, None)) if scheme.lower() == "zoho-oauthtoken" else (None, None)

    def _token_org(self, headers):
        return self.orgs.get(self._token(headers)[1])

    def _granted_org(self, call):
        """The organization whose client and refresh token the grant carries, else None."""
        params = form_params(call)
        for org in self.orgs.values():
            if (params.get("client_id"), params.get("client_secret"), params.get("refresh_token")) == (
                    org.client_id, org.client_secret, org.refresh_token):
                return org
        return None

    def _new_key(self):
        while True:  # 10 digits
            key = 10**9 + secrets.randbelow(9 * 10**9)
            if key not in self.meetings and key not in self.deleted:
                return key

    def _times(self, meeting):
        """(start, end, status) of a stored meeting."""
        start = meeting["start"]
        end = start + timedelta(milliseconds=meeting["duration"])
        if datetime.now(timezone.utc) >= end:
            status = "completed"
        else:
            status = "started" if meeting["started"] else "upcoming"
        return start, end, status

    def _join_link(self, meeting):
        """Like Zoho's sample (https://meeting.zoho.com/join?key=123456789): no password in it."""
        return f"{self.base_url}/meeting/join?key={meeting['meetingKey']}"

    def _listed(self, meeting):
        """A session as the list answers it: only the list page's documented fields (no agenda,
        no startLink, no millisecond times)."""
        zone = ZoneInfo(meeting["timezone"])
        start, end, _ = self._times(meeting)
        return {
            "meetingKey": meeting["meetingKey"],
            "sysId": meeting["sysId"],
            "topic": meeting["topic"],
            "presenterEmail": presenter_email(self.orgs[meeting["zsoid"]], meeting["presenter"]),
            "presenterZuid": meeting["presenter"],
            "creatorZuid": meeting["presenter"],
            "startTime": start.astimezone(zone).strftime(SHOWN_FORMAT),
            "endTime": end.astimezone(zone).strftime(SHOWN_FORMAT),
            "duration": meeting["duration"],
            "timezone": meeting["timezone"],
            "joinLink": self._join_link(meeting),
            "meetingEmbedUrl": f"{self.base_url}/meeting/embed?key={meeting['meetingKey']}",
            "pwd": meeting["pwd"],
            "encryptPwd": meeting["encryptPwd"],
        }

    def _view(self, meeting):
        """The session object as Zoho answers a create, get or update."""
        zone = ZoneInfo(meeting["timezone"])
        start, end, status = self._times(meeting)
        return {
            "meetingKey": meeting["meetingKey"],
            "sysId": meeting["sysId"],
            "topic": meeting["topic"],
            "agenda": meeting["agenda"],
            "presenter": meeting["presenter"],
            "presenterEmail": presenter_email(self.orgs[meeting["zsoid"]], meeting["presenter"]),
            "startTime": start.astimezone(zone).strftime(SHOWN_FORMAT),
            "endTime": end.astimezone(zone).strftime(SHOWN_FORMAT),
            "startTimeMillisec": str(epoch_ms(start)),
            "endTimeMillisec": str(epoch_ms(end)),
            "duration": meeting["duration"],
            "timezone": meeting["timezone"],
            "startLink": f"{self.base_url}/meeting/start?key={meeting['meetingKey']}&token={meeting['token']}",
            "joinLink": self._join_link(meeting),
            "pwd": meeting["pwd"],
            "encryptPwd": meeting["encryptPwd"],
            "participants": [dict(p) for p in meeting["participants"]],
            "status": status,
        }

    def stored_meeting(self, meeting):
        """What /__sandbox/meetings shows: the full session and when it was created."""
        return dict(self._view(meeting), createdTimeMillisec=meeting["createdTimeMillisec"])

    def _apply(self, meeting, session):
        """A create/update's (valid) fields onto a stored meeting: a full edit."""
        zone = ZoneInfo(session["timezone"])
        local = parse_start(session["startTime"]).replace(tzinfo=zone)
        meeting.update(
            topic=session["topic"],
            agenda=session.get("agenda", ""),
            start=local.astimezone(timezone.utc),
            duration=session["duration"],
            timezone=session["timezone"],
            presenter=positive_id(session["presenter"]),
            participants=[dict(p) for p in session.get("participants", [])],
        )
        return Reply(200, {"session": self._view(meeting)})

    # -- Zoho operations

    def api_answer(self, call, errors):
        """Normal processing once authenticated: organization, validation, then the operation."""
        with self.lock:
            org = self._token_org(call.headers)
        if org is None:  # forgotten by a reset meanwhile
            return Reply(401, INVALID_TOKEN)
        if call.key == USER:
            zuid = org.presenters[0]
            return Reply(200, {"userDetails": {"zuid": zuid, "zsoid": org.zsoid,
                                               "primaryEmail": presenter_email(org, zuid), "displayName": "Sandbox Host"}})
        if call.params["zsoid"] != str(org.zsoid):  # only the token's own organization
            return zoho_error(403, 7005, "Organization not found")
        if errors:
            return zoho_error(400, 7001, f"Invalid input: {errors[0]['field']}")
        if call.key == CREATE:
            return self.create_session(call, org)
        if call.key == LIST:
            return self.list_sessions(call, org)
        key = as_key(call.params["meetingKey"])
        with self.lock:
            meeting = self.meetings.get(key)
            if meeting is None or meeting["zsoid"] != org.zsoid:
                return meeting_not_found()
            if call.key == GET:
                return Reply(200, {"session": self._view(meeting)})
            if call.key == UPDATE:
                return self._apply(meeting, call.json()["session"])
            self.deleted[key] = self.meetings.pop(key)  # DELETE
            return Reply(204)

    def grant(self, call):
        """Refresh-token grant; parameters in the query or a form body. Like Zoho, refusals other
        than the throttle answer HTTP 200 with an error field."""
        params = form_params(call)
        if params.get("grant_type") != "refresh_token":
            return Reply(200, {"error": "unsupported_grant_type"})
        client = (params.get("client_id"), params.get("client_secret"))
        with self.lock:
            if not any(client == (o.client_id, o.client_secret) for o in self.orgs.values()):
                return Reply(200, {"error": "invalid_client"})
            org = self._granted_org(call)
            if org is None:  # no such refresh token for this client
                return Reply(200, {"error": "invalid_code"})
            if not org.limit.try_issue():
                return Reply(400, TOKEN_LIMIT)
            token = self._issue("accessTokens", f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}")
            self.tokens[token] = (time.monotonic() + self.token_ttl, org.zsoid)
        return Reply(200, {"access_token": token, "api_domain": API_DOMAIN, "token_type": "Bearer",
                           "expires_in": self.token_ttl})

    def create_session(self, call, org):
        with self.lock:
            key = self._new_key()
            meeting = {
                "meetingKey": key,
                "zsoid": org.zsoid,
                "sysId": random_digits(18),
                "token": self._issue("linkTokens", secrets.token_urlsafe(24)),
                "pwd": self._issue("linkTokens", secrets.token_urlsafe(12)),
                "encryptPwd": secrets.token_urlsafe(24),
                "createdTimeMillisec": str(epoch_ms(datetime.now(timezone.utc))),
                "started": False,
            }
            reply = self._apply(meeting, call.json()["session"])
            self.meetings[key] = meeting
            return Reply(201, reply.body)  # create-a-meeting.html: 201 Created

    def list_sessions(self, call, org):
        with self.lock:
            mode = self.index_mode
            listtype, index, count = list_params(call.query, mode)[1]
            ours = [m for m in self.meetings.values() if m["zsoid"] == org.zsoid]
            ours.sort(key=lambda m: (m["start"], m["meetingKey"]))
            if listtype != "all":
                ours = [m for m in ours if (self._times(m)[2] != "completed") == (listtype == "upcoming")]
            first = index * count if mode == "pages-from-0" else index - 1
            views = [self._listed(m) for m in ours[first : first + count]]
        return Reply(200, {"session": views})

    # -- host start / participant join pages (what the links open)

    def page(self, route, params, query):
        """Opening a valid start link starts the meeting, as the host's client would."""
        role = self.pages[route]
        key = as_key(query.get("key", ""))
        with self.lock:
            meeting = self.meetings.get(key)
            # The start link carries its token; a join link only the key (the password is asked
            # for on the page, so one given in the link must be the session's).
            secret_name = "token" if role == "start" else "pwd"
            given = query.get(secret_name, meeting[secret_name] if meeting and role == "join" else "")
            if meeting is None or not secrets.compare_digest(given.encode(), meeting[secret_name].encode()):
                return Reply(403, f"Zoho sandbox: this {role} link is invalid")
            if role == "start":
                meeting["started"] = True
                return Reply(200, f"Zoho sandbox: host start page for meeting {key}")
        return Reply(200, f"Zoho sandbox: join page for meeting {key}")

    # -- faults

    def fault_error(self, rule):
        scope = FAULT_SCOPE.get(rule["kind"], OPERATIONS)
        if rule["operation"] not in scope:
            return f"kind {rule['kind']} applies only to {scope}"
        if rule["kind"] == "throttle":
            if rule.setdefault("status", 400) not in (200, 400):
                return "throttle status must be 200 or 400"
            if rule.setdefault("lang", "en") not in THROTTLE_BODIES:
                return f"throttle lang must be one of {sorted(THROTTLE_BODIES)}"
        return None

    def fault_reply(self, rule):
        kind = rule["kind"]
        if kind == "status":
            return Reply(rule["status"], rule.get("body", {"error": {"code": 500, "message": "Internal server error"}}))
        if kind == "rate_limit":
            after = rule["retryAfter"]  # null: a 429 without Retry-After
            return Reply(429, {"error": {"code": 429, "message": "Too many requests"}},
                         {} if after is None else {"Retry-After": after})
        if kind == "token_invalid":
            return Reply(401, INVALID_TOKEN)
        if kind == "throttle":  # Zoho's "too many requests", as HTTP 200 or 400, in English or Chinese
            if rule["operation"] == TOKEN:
                with self.lock:
                    self.limit.faulted += 1
            return Reply(rule["status"], THROTTLE_BODIES[rule["lang"]])
        with self.lock:  # too_many
            self.limit.faulted += 1
        return Reply(400, TOO_MANY)

    # -- control API beyond the common part

    def more_control(self, key, payload, params):
        if key == "POST /__sandbox/orgs":
            return self.add_org(payload)
        if key == "POST /__sandbox/orgs/{zsoid}/presenters":
            return self.add_presenter(params["zsoid"], payload)
        if key == "POST /__sandbox/seed":
            return self.seed(payload)
        if key == "POST /__sandbox/index-mode":
            mode = payload.get("mode") if isinstance(payload, dict) else None
            if mode not in INDEX_MODES:
                return Reply(400, {"error": f"mode must be one of {sorted(INDEX_MODES)}"})
            with self.lock:
                self.index_mode = mode
            return Reply(204)
        with self.lock:
            if key == "GET /__sandbox/orgs":
                return Reply(200, {"orgs": [o.public() for o in self.orgs.values()]})
            if key == "POST /__sandbox/revoke":
                self.tokens.clear()
                return Reply(204)
            now = time.monotonic()  # GET /__sandbox/tokens
            return Reply(200, {
                "issued": self.limit.issued,
                "refused": self.limit.refused,
                "faulted": self.limit.faulted,
                "maxInWindow": self.limit.max_in_window,
                "limit": self.limit.limit,
                "windowSeconds": self.limit.window,
                "live": sum(1 for expiry, zsoid in self.tokens.values() if expiry > now and zsoid == self.zsoid),
            })

    def seed(self, payload):
        """`count` copies of `session` (create fields; presenter: the CLI organization's user) made
        directly, as if created outside telemeet: for lists longer than a page."""
        count = payload.get("count") if isinstance(payload, dict) else None
        session = payload.get("session") if isinstance(payload, dict) else None
        if not (is_int(count) and 1 <= count <= 1000 and isinstance(session, dict)):
            return Reply(400, {"error": "body must be {\"count\": 1..1000, \"session\": {...}}"})
        with self.lock:
            org = self.orgs[self.zsoid]
            session = {"presenter": org.presenters[0], **session}
            errors = session_errors(session, list(org.presenters))
            if errors:
                return Reply(400, {"error": errors[0]})
            keys = []
            for _ in range(count):
                key = self._new_key()
                meeting = {"meetingKey": key, "zsoid": org.zsoid, "sysId": random_digits(18),
                           "token": self._issue("linkTokens", secrets.token_urlsafe(24)),
                           "pwd": self._issue("linkTokens", secrets.token_urlsafe(12)),
                           "encryptPwd": secrets.token_urlsafe(24),
                           "createdTimeMillisec": str(epoch_ms(datetime.now(timezone.utc))), "started": False}
                self._apply(meeting, session)
                self.meetings[key] = meeting
                keys.append(key)
        return Reply(201, {"meetingKeys": keys})

    def _zuid_taken(self, zuids):
        """A message if a zuid already belongs to an organization (the caller holds the lock)."""
        if any(z in o.presenters for o in self.orgs.values() for z in zuids):
            return "a zuid belongs to one organization only"
        return None

    def add_org(self, payload):
        fields, problem = parse_org(payload)
        if problem:
            return Reply(400, {"error": problem})
        zsoid, client_id, client_secret, refresh_token, zuids = fields
        with self.lock:
            if zsoid in self.orgs:
                return Reply(409, {"error": "an organization with this zsoid exists"})
            if any(o.refresh_token == refresh_token for o in self.orgs.values()):
                return Reply(409, {"error": "this refresh token belongs to another organization"})
            taken = self._zuid_taken(zuids)
            if taken:
                return Reply(409, {"error": taken})
            org = Org(zsoid, client_id, client_secret, refresh_token, zuids,
                      TokenLimit(self.token_limit, self.token_window))
            self.orgs[zsoid] = org
            for kind, secret in (("refreshTokens", refresh_token), ("clientSecrets", client_secret)):
                if secret not in self.issued[kind]:
                    self._issue(kind, secret)
            return Reply(201, org.public())

    def add_presenter(self, zsoid, payload):
        zuid = positive_id(payload.get("zuid")) if isinstance(payload, dict) else None
        if zuid is None:
            return Reply(400, {"error": "zuid must be a positive integer"})
        with self.lock:
            org = self.orgs.get(as_key(zsoid))
            if org is None:
                return Reply(404, {"error": "no such organization"})
            taken = self._zuid_taken([zuid])
            if taken:
                return Reply(409, {"error": taken})
            org.presenters.append(zuid)
            return Reply(201, org.public())


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def positive_number(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return int(value) if value.is_integer() else value


def parse_args(argv):
    parser = argument_parser("Zoho Accounts + Zoho Meeting API sandbox (loopback only).")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--refresh-token", required=True, help="the one refresh token accepted (never logged)")
    parser.add_argument("--zsoid", type=positive_int, required=True, help="the organization id")
    parser.add_argument("--zuid", type=positive_int, help="the one user (presenter); default a random 8-digit id")
    parser.add_argument("--token-ttl", type=positive_int, default=3600, help="access token lifetime, seconds")
    parser.add_argument("--token-limit", type=positive_int, default=10, help="access tokens per refresh token per window")
    parser.add_argument("--token-window", type=positive_number, default=600, help="the limit's rolling window, seconds")
    return check_loopback(parser, parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    start_logging(Sandbox.name)
    serve(Sandbox(args), args.host, args.port)


if __name__ == "__main__":
    main()

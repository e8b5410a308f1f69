"""Zoom sandbox: a loopback stand-in for Zoom's Server-to-Server OAuth and the Meetings API
subset telemeet uses. Requests are validated against the vendored spec
(spec/zoom-meetings-subset.json); answers, errors and rate-limit headers mimic Zoom's.
It can also deliver signed Zoom webhooks (optionally broken on purpose) to a subscriber.
Tests drive it through the control API under /__sandbox/ (see README.md).

    python sandbox.py --port 0 --account-id ACC --client-id CID --client-secret CSECRET
"""

import base64
import copy
import email.utils
import hashlib
import hmac
import http.client
import json
import secrets
import string
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jsonschema_path import SchemaPath
from openapi_core import V30RequestValidator
from openapi_core.casting.schemas.exceptions import CastError
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.exceptions import MediaTypeDeserializeError
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.validation.request.exceptions import (
    MissingRequiredParameter,
    MissingRequiredRequestBody,
    ParameterValidationError,
)
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from werkzeug.datastructures import Headers, ImmutableMultiDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # infra/: sandbox_common
from sandbox_common import (  # noqa: E402
    BaseSandbox, Reply, argument_parser, check_loopback, form_params, is_int, random_digits, serve, start_logging,
)

DEFAULT_SPEC = Path(__file__).resolve().parent / "spec" / "zoom-meetings-subset.json"

# Operation keys: method + templated path, as reported by /__sandbox/calls and used by faults.
OAUTH_TOKEN = "POST /oauth/token"
CREATE = "POST /v2/users/{userId}/meetings"
LIST = "GET /v2/users/{userId}/meetings"
GET = "GET /v2/meetings/{meetingId}"
UPDATE = "PATCH /v2/meetings/{meetingId}"
DELETE = "DELETE /v2/meetings/{meetingId}"
STATUS = "PUT /v2/meetings/{meetingId}/status"
OPERATIONS = [OAUTH_TOKEN, CREATE, LIST, GET, UPDATE, DELETE, STATUS]

FAULT_KINDS = {"status", "delay", "hold", "rate_limit", "daily_limit", "token_expired", "drop_after"}
UUID_MODES = {
    "normal": lambda u: True,
    "slash": lambda u: u.startswith("/"),
    "double-slash": lambda u: "//" in u and not u.startswith("/"),
}
# Deliberately broken webhook deliveries (README.md, "Webhook tamper modes").
WEBHOOK_TAMPERS = {
    "body_byte", "whitespace", "wrong_secret", "truncated_signature", "v0_only", "uppercase_hex",
    "missing_v0", "v1_scheme", "missing_signature", "missing_timestamp", "double_signature",
    "timestamp_past", "timestamp_future", "non_numeric_timestamp", "empty_body", "different_timestamp",
}
WEBHOOK_OBJECT_FIELDS = ["id", "uuid", "host_id", "topic", "type", "start_time", "duration", "timezone"]
WEBHOOK_UPDATED_FIELDS = ["id", "uuid", "start_time", "duration", "topic", "timezone"]
PARTICIPANT_EVENTS = {"meeting.participant_joined": "join_time", "meeting.participant_left": "leave_time"}
WEBHOOK_SKEW = 301  # seconds: just outside the usual 5-minute replay window
WEBHOOK_TIMEOUT = 10  # seconds
HOST_EMAIL = "host@sandbox.invalid"
ZAK_TTL = timedelta(hours=2)  # Zoom's start_url expires 2 h after it was generated
PAGE_TOKEN_TTL = 15 * 60  # seconds, as documented for next_page_token
LIST_FIELDS = ["uuid", "id", "host_id", "topic", "type", "start_time", "duration", "timezone", "created_at", "join_url"]
DEFAULT_SETTINGS = {
    "host_video": False,
    "participant_video": False,
    "join_before_host": False,
    "jbh_time": 0,
    "mute_upon_entry": False,
    "waiting_room": True,
    "approval_type": 2,
    "audio": "voip",
    "auto_recording": "none",
    "use_pmi": False,
    "watermark": False,
    "private_meeting": False,
}

INVALID_TOKEN = {"code": 124, "message": "Invalid access token."}
EXPIRED_TOKEN = {"code": 124, "message": "Access token is expired."}


def utc_iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value):
    """RFC 3339 (already checked against the spec's `format: date-time`) -> aware datetime."""
    return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


def random_alnum(n):
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def random_user_id():
    """Zoom-style user id: 22 base64url characters."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def deep_merge(base, update):
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def basic_credentials(headers):
    """(user, password) from an HTTP Basic Authorization header, or None."""
    scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except ValueError:  # bad base64 (binascii.Error) or bad UTF-8 (UnicodeDecodeError)
        return None
    return (user, password) if sep else None


def webhook_digest(secret, timestamp, body):
    """Hex HMAC-SHA256(secret, "v0:{timestamp}:{body}"); Zoom's header is "v0=" + this."""
    return hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def is_http_url(url):
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # e.g. a port that is not a number
        return False


def post_webhook(url, headers, body):
    """POST to a subscriber; (status, JSON body or text or None). http.client rather than urllib,
    because urllib cannot send a header twice (the double_signature tamper mode)."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=WEBHOOK_TIMEOUT)
    try:
        connection.putrequest("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                              skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    if not raw:
        return response.status, None
    text = raw.decode("utf-8", "replace")
    if "json" in (response.getheader("Content-Type") or "").lower():
        try:
            return response.status, json.loads(text)
        except ValueError:
            pass
    return response.status, text


def zoom_error(status, code, message):
    return Reply(status, {"code": code, "message": message})


def meeting_not_found(meeting_id):
    return zoom_error(404, 3001, f"Meeting does not exist: {meeting_id}.")


# ---------------------------------------------------------------- spec validation


@dataclass
class SpecRequest:
    """The request shape openapi-core expects; the path template is already known."""

    method: str
    path_pattern: str
    parameters: RequestParameters
    body: bytes | None
    content_type: str
    host_url: str = "http://sandbox"

    @property
    def path(self):
        return self.path_pattern


def describe_schema_error(err):
    """(field, message) for one jsonschema error. Messages never echo the offending value:
    it may be a passcode."""
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err.absolute_path).replace(".[", "[")
    kind, limit = err.validator, err.validator_value
    if kind == "required":
        missing = next(p for p in limit if p not in err.instance)
        return (f"{where}.{missing}" if where else missing), "Required field is missing."
    messages = {
        "type": f"Must be of type {limit}.",
        "enum": f"Must be one of {json.dumps(limit)}.",
        "format": f"Must be a valid {limit}.",
        "maxLength": f"Must be at most {limit} characters.",
        "minLength": f"Must be at least {limit} characters.",
        "maximum": f"Must be at most {limit}.",
        "minimum": f"Must be at least {limit}.",
        "pattern": f"Must match {limit}.",
    }
    return where or "body", messages.get(kind, f"Failed the '{kind}' constraint.")


def describe_validation_error(exc):
    """Turn one openapi-core request error into Zoom-style {"field","message"} entries."""
    cause = exc.__cause__
    if isinstance(exc, ParameterValidationError):
        if isinstance(exc, MissingRequiredParameter):
            return [{"field": exc.name, "message": "Required parameter is missing."}]
        if isinstance(cause, InvalidSchemaValue):
            return [{"field": exc.name, "message": describe_schema_error(e)[1]} for e in cause.schema_errors][:1]
        if isinstance(cause, CastError):
            return [{"field": exc.name, "message": f"Must be of type {cause.type}."}]
        return [{"field": exc.name, "message": "Invalid parameter."}]
    if isinstance(exc, MissingRequiredRequestBody):
        return [{"field": "body", "message": "Request body is required."}]
    if isinstance(cause, MediaTypeNotFound):
        return [{"field": "Content-Type", "message": "Must be application/json."}]
    if isinstance(cause, MediaTypeDeserializeError):
        return [{"field": "body", "message": "Malformed JSON."}]
    if isinstance(cause, InvalidSchemaValue):
        return [{"field": f, "message": m} for f, m in map(describe_schema_error, cause.schema_errors)]
    return [{"field": "request", "message": "Invalid request."}]


class SpecValidator:
    def __init__(self, spec_path):
        spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        # Paths are matched relative to our own /v2 prefix, not https://api.zoom.us/v2.
        spec["servers"] = [{"url": "/v2"}]
        # Authentication is the sandbox's own job (Zoom's 401/124 answers); openapi-core
        # cannot check oauth2 schemes anyway.
        spec.pop("security", None)
        for item in spec["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict):
                    operation.pop("security", None)
        self._validator = V30RequestValidator(SchemaPath.from_dict(spec))
        self._lock = threading.Lock()  # openapi-core makes no thread-safety promises

    def errors(self, call, content_type):
        method, template = call.key.split(" ", 1)
        request = SpecRequest(
            method=method.lower(),
            path_pattern=template,
            parameters=RequestParameters(
                query=ImmutableMultiDict(call.query), header=Headers(), path=dict(call.params)
            ),
            body=call.body or None,
            content_type=content_type.lower(),
        )
        with self._lock:
            found = list(self._validator.iter_errors(request))
        entries, seen = [], set()
        for exc in found:
            for entry in describe_validation_error(exc):
                if entry["field"] not in seen:  # like Zoom: one entry per field
                    seen.add(entry["field"])
                    entries.append(entry)
        return entries


# ---------------------------------------------------------------- state and operations


class Sandbox(BaseSandbox):
    name = "zoom-sandbox"
    title = "Zoom sandbox"
    operations = OPERATIONS
    token_operation = OAUTH_TOKEN
    fault_kinds = FAULT_KINDS
    pages = {"GET /s/{meetingId}": "start", "GET /j/{meetingId}": "join"}
    extra_control = ["POST /__sandbox/uuid-mode", "POST /__sandbox/webhooks/send", "GET /__sandbox/webhooks"]

    def __init__(self, args, validator):
        super().__init__()
        self.account_id = args.account_id
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.token_ttl = args.token_ttl
        self.validator = validator
        self.webhook_secret = args.webhook_secret
        self.webhook_target = args.webhook_target
        self.host_id = random_user_id()
        # Every secret handed out or used, kept across resets so log-leak checks stay complete.
        self.issued = {"accessTokens": [], "zakTokens": [], "passwords": [], "webhookSecrets": []}
        if self.webhook_secret:
            self.issued["webhookSecrets"].append(self.webhook_secret)
        self.reset()

    def reset(self):
        with self.lock:
            self.tokens = {}  # access token -> expiry (monotonic seconds)
            self.meetings = {}  # id -> meeting object, as Zoom shows it
            self.deleted = {}  # id -> meeting object (recoverable)
            self.zaks = {}  # zak -> (meeting id, expiry datetime)
            self.page_tokens = {}  # next_page_token -> (list type, offset, expiry monotonic)
            self.reset_bookkeeping()
            self.webhooks = []  # deliveries: {"event", "tamper", "status"}
            self.uuid_mode = "normal"

    # -- request preparation (callers hold no lock)

    def error_body(self, code, message):
        return {"code": code, "message": message}

    def path_params(self, raw_params):
        return {
            name: self.resolve_meeting_ref(value) if name == "meetingId" else unquote(value)
            for name, value in raw_params.items()
        }

    def validate(self, call):
        if call.key == OAUTH_TOKEN:
            return [], None
        errors = self.validator.errors(call, call.headers.get("Content-Type") or "")
        return errors, not errors

    def resolve_meeting_ref(self, raw):
        """Path segment -> meeting id string for validation. Like Zoom, a meeting UUID is
        accepted too; one that starts with '/' or contains '//' must be double URL-encoded.
        Anything unresolved is returned as-is and fails the spec's int64 check."""
        once = unquote(raw)
        if once.isdigit():
            return once
        double_encoded = "%" in once
        uuid = unquote(once) if double_encoded else once
        if (uuid.startswith("/") or "//" in uuid) and not double_encoded:
            return once
        with self.lock:
            meeting = self._find(uuid)
        return str(meeting["id"]) if meeting else once

    def authenticate(self, headers):
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        with self.lock:
            expiry = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None:
            return Reply(401, INVALID_TOKEN)
        if time.monotonic() >= expiry:
            return Reply(401, EXPIRED_TOKEN)
        return None

    # -- helpers (called with self.lock held)

    def _new_zak(self, meeting_id):
        zak = self._issue("zakTokens", secrets.token_urlsafe(32))
        self.zaks[zak] = (meeting_id, datetime.now(timezone.utc) + ZAK_TTL)
        return f"{self.base_url}/s/{meeting_id}?zak={zak}"

    def _new_meeting_id(self):
        while True:  # 11 digits, always above 2^32: clients must use 64-bit integers
            meeting_id = 10**10 + secrets.randbelow(9 * 10**10)
            if meeting_id not in self.meetings and meeting_id not in self.deleted:
                return meeting_id

    def _new_uuid(self):
        wanted = UUID_MODES[self.uuid_mode]
        while True:
            uuid = base64.b64encode(secrets.token_bytes(16)).decode()
            if wanted(uuid):
                return uuid

    def _find(self, uuid):
        for meeting in [*self.meetings.values(), *self.deleted.values()]:
            if meeting["uuid"] == uuid:
                return meeting
        return None

    # -- Zoom operations

    def api_answer(self, call, errors):
        """Normal processing once authenticated: validation, then the operation itself."""
        if errors:
            return Reply(400, {"code": 300, "message": "Validation Failed.", "errors": errors})
        handler = {
            CREATE: self.create_meeting,
            LIST: self.list_meetings,
            GET: self.get_meeting,
            UPDATE: self.update_meeting,
            DELETE: self.delete_meeting,
            STATUS: self.update_status,
        }[call.key]
        return handler(call)

    def grant(self, call):
        """Server-to-Server OAuth: grant_type/account_id in the query or a form body."""
        params = form_params(call)
        if basic_credentials(call.headers) != (self.client_id, self.client_secret):
            return Reply(400, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
        if params.get("grant_type") != "account_credentials":
            return Reply(400, {"reason": "unsupported grant type", "error": "unsupported_grant_type"})
        if params.get("account_id") != self.account_id:
            return Reply(400, {"reason": "Invalid account_id", "error": "invalid_request"})
        with self.lock:
            token = self._issue("accessTokens", secrets.token_urlsafe(48))
            self.tokens[token] = time.monotonic() + self.token_ttl
        return Reply(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "scope": "meeting:read:admin meeting:write:admin",
                "api_url": self.base_url,
            },
        )

    def create_meeting(self, call):
        req = call.json()
        now = datetime.now(timezone.utc)
        with self.lock:
            meeting_id = self._new_meeting_id()
            password = req["password"] if "password" in req else random_alnum(10)
            numeric = password if password.isdigit() else random_digits(10)
            encrypted = secrets.token_urlsafe(24) + ".1"
            for secret in {password, numeric, encrypted} - {""}:
                self._issue("passwords", secret)
            meeting = {
                "uuid": self._new_uuid(),
                "id": meeting_id,
                "host_id": self.host_id,
                "host_email": HOST_EMAIL,
                "topic": req.get("topic", "Zoom Meeting"),
                "type": req.get("type", 2),
                "status": "waiting",
                "start_time": utc_iso(parse_time(req["start_time"]) if "start_time" in req else now),
                "duration": req.get("duration", 60),
                "timezone": req.get("timezone", "UTC"),
                "agenda": req.get("agenda", ""),
                "created_at": utc_iso(now),
                "start_url": self._new_zak(meeting_id),
                "join_url": f"{self.base_url}/j/{meeting_id}?pwd={encrypted}",
                "password": password,
                "h323_password": numeric,
                "pstn_password": numeric,
                "encrypted_password": encrypted,
                "settings": deep_merge(DEFAULT_SETTINGS, req.get("settings", {})),
                "pre_schedule": False,
            }
            self.meetings[meeting_id] = meeting
            return Reply(201, copy.deepcopy(meeting))

    def list_meetings(self, call):
        list_type = call.query.get("type", "scheduled")
        page_size = int(call.query.get("page_size", 30))  # the spec caps it at 300
        page_size = page_size if page_size > 0 else 30
        now = datetime.now(timezone.utc)
        with self.lock:
            offset = 0
            token = call.query.get("next_page_token")
            if token:
                saved = self.page_tokens.get(token)
                if saved is None or saved[0] != list_type or time.monotonic() >= saved[2]:
                    return zoom_error(400, 300, "The next page token is invalid or expired.")
                offset = saved[1]

            def upcoming(m):
                end = parse_time(m["start_time"]) + timedelta(minutes=m["duration"])
                return m["status"] == "started" or (m["status"] == "waiting" and end >= now)

            selected = {
                "scheduled": lambda m: True,
                "live": lambda m: m["status"] == "started",
                "upcoming": upcoming,
                "upcoming_meetings": upcoming,
                "previous_meetings": lambda m: not upcoming(m),
            }[list_type]
            found = sorted(
                (m for m in self.meetings.values() if selected(m)), key=lambda m: (m["start_time"], m["id"])
            )
            page = found[offset : offset + page_size]
            next_token = ""
            if offset + page_size < len(found):
                next_token = secrets.token_urlsafe(24)
                self.page_tokens[next_token] = (list_type, offset + page_size, time.monotonic() + PAGE_TOKEN_TTL)
            meetings = [{**{k: m[k] for k in LIST_FIELDS}, "agenda": m["agenda"][:250]} for m in page]
        return Reply(
            200,
            {"page_size": page_size, "total_records": len(found), "next_page_token": next_token, "meetings": meetings},
        )

    def get_meeting(self, call):
        meeting_id = int(call.params["meetingId"])
        with self.lock:
            meeting = self.meetings.get(meeting_id)
            if meeting is None:
                return meeting_not_found(meeting_id)
            meeting["start_url"] = self._new_zak(meeting_id)  # a fresh start link on every read
            return Reply(200, copy.deepcopy(meeting))

    def update_meeting(self, call):
        meeting_id = int(call.params["meetingId"])
        req = call.json()
        with self.lock:
            meeting = self.meetings.get(meeting_id)
            if meeting is None:
                return meeting_not_found(meeting_id)
            for key in ("topic", "duration", "timezone", "agenda"):
                if key in req:
                    meeting[key] = req[key]
            if "start_time" in req:
                meeting["start_time"] = utc_iso(parse_time(req["start_time"]))
            if "settings" in req:
                meeting["settings"] = deep_merge(meeting["settings"], req["settings"])
        return Reply(204)

    def delete_meeting(self, call):
        meeting_id = int(call.params["meetingId"])
        with self.lock:
            meeting = self.meetings.get(meeting_id)
            if meeting is None:
                return meeting_not_found(meeting_id)
            if meeting["status"] == "started":
                return zoom_error(400, 3002, "Sorry, you cannot delete this meeting since it is in progress.")
            self.deleted[meeting_id] = self.meetings.pop(meeting_id)
        return Reply(204)

    def update_status(self, call):
        meeting_id = int(call.params["meetingId"])
        action = call.json()["action"]
        with self.lock:
            if action == "recover" and meeting_id in self.deleted:
                self.meetings[meeting_id] = self.deleted.pop(meeting_id)
                self.meetings[meeting_id]["status"] = "waiting"
            meeting = self.meetings.get(meeting_id)
            if meeting is None:
                return meeting_not_found(meeting_id)
            if action == "end":
                meeting["status"] = "finished"
        return Reply(204)

    # -- host start / participant join pages (what the links open)

    def page(self, route, params, query):
        """Opening a valid start link starts the meeting, as the host's client would."""
        role, raw_id = self.pages[route], params["meetingId"]
        meeting_id = int(raw_id) if raw_id.isdigit() else None
        with self.lock:
            meeting = self.meetings.get(meeting_id)
            if meeting is None:
                return Reply(404, f"Zoom sandbox: meeting {raw_id[:20]} does not exist")
            if role == "start":
                owner, expiry = self.zaks.get(query.get("zak", ""), (None, None))
                if owner != meeting_id or datetime.now(timezone.utc) >= expiry:
                    return Reply(403, "Zoom sandbox: this start link is invalid or has expired")
                meeting["status"] = "started"
                return Reply(200, f"Zoom sandbox: host start page for meeting {meeting_id}")
            if query.get("pwd") != meeting["encrypted_password"]:
                return Reply(403, "Zoom sandbox: wrong meeting passcode")
            return Reply(200, f"Zoom sandbox: join page for meeting {meeting_id}")

    # -- faults

    def fault_reply(self, rule):
        kind = rule["kind"]
        if kind == "status":
            return Reply(rule["status"], rule.get("body", {"code": 500, "message": "Internal server error"}))
        if kind == "token_expired":
            return Reply(401, EXPIRED_TOKEN)
        if kind == "rate_limit":
            return Reply(
                429,
                {"code": 429, "message": "You have exceeded the rate limit of 10 requests per second."},
                {
                    "Retry-After": str(rule.get("retryAfter", "1")),
                    "X-RateLimit-Category": "Light",
                    "X-RateLimit-Type": "QPS",
                },
            )
        # daily_limit: blocked until the next UTC midnight
        midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return Reply(
            429,
            {
                "code": 429,
                "message": "You have reached the maximum daily rate limit for this API. Refer to the "
                "response header for details on when you can make another request.",
            },
            {
                "Retry-After": email.utils.format_datetime(midnight, usegmt=True),
                "X-RateLimit-Type": "Daily-limit",
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
            },
        )

    # -- webhooks (signed deliveries to a subscriber, optionally broken on purpose)

    def send_webhook(self, req):
        def bad(message, status=400):
            return Reply(status, {"error": message})

        if not isinstance(req, dict):
            return bad("body must be a JSON object")
        event, tamper = req.get("event"), req.get("tamper")
        if not isinstance(event, str) or not event:
            return bad("event must be a non-empty string")
        target = req.get("target") or self.webhook_target
        if not target:
            return bad("no target: pass target or start the sandbox with --webhook-target")
        if not isinstance(target, str) or not is_http_url(target):
            return bad("target must be an http(s) URL")
        secret = req.get("secret") or self.webhook_secret
        if not secret:
            return bad("no secret: pass secret or start the sandbox with --webhook-secret")
        if not isinstance(secret, str):
            return bad("secret must be a string")
        if tamper is not None and tamper not in WEBHOOK_TAMPERS:
            return bad(f"tamper must be one of {sorted(WEBHOOK_TAMPERS)}")
        for name in ("eventTs", "timestamp"):
            if name in req and not (is_int(req[name]) and req[name] >= 0):
                return bad(f"{name} must be a non-negative integer")
        for name in ("object", "participant", "oldObject"):
            if not isinstance(req.get(name, {}), dict):
                return bad(f"{name} must be a JSON object")
        meeting = {}
        if "meetingId" in req:
            meeting_id = req["meetingId"]
            meeting_id = int(meeting_id) if isinstance(meeting_id, str) and meeting_id.isdigit() else meeting_id
            with self.lock:  # a deleted meeting still counts: meeting.deleted is sent after the delete
                found = (self.meetings.get(meeting_id) or self.deleted.get(meeting_id)) if is_int(meeting_id) else None
                meeting = {k: found[k] for k in WEBHOOK_OBJECT_FIELDS} if found else None
            if meeting is None:
                return bad("meetingId: the sandbox holds no such meeting", 404)

        now = time.time()
        event_ts = req.get("eventTs", int(now * 1000))
        timestamp = req.get("timestamp", int(now))
        envelope = {"event": event, "event_ts": event_ts, "payload": self.webhook_payload(event, meeting, req, event_ts)}
        self.note_webhook_secret(secret)
        headers, body, timestamp = self.signed_delivery(envelope, secret, timestamp, tamper)

        try:
            status, answer = post_webhook(target, headers, body)
            failure = None
        except (OSError, http.client.HTTPException) as exc:
            status, failure = None, type(exc).__name__
        with self.lock:
            self.webhooks.append({"event": event, "tamper": tamper, "status": status})
        if failure:
            return bad(f"webhook target unreachable ({failure})", 502)
        sent = {"event": event, "eventTs": event_ts, "timestamp": None if tamper == "missing_timestamp" else timestamp}
        if event == "endpoint.url_validation":
            sent["plainToken"] = envelope["payload"]["plainToken"]
        return Reply(200, {"status": status, "body": answer, "sent": sent})

    def signed_delivery(self, envelope, secret, timestamp, tamper):
        """(headers, body, timestamp as sent): signed as Zoom signs, then with exactly one thing
        broken when a tamper mode is asked for."""
        body = json.dumps(envelope, separators=(",", ":")).encode()  # compact, as Zoom sends it
        timestamp = {
            "timestamp_past": timestamp - WEBHOOK_SKEW,
            "timestamp_future": timestamp + WEBHOOK_SKEW,
            "non_numeric_timestamp": "not-a-number",
        }.get(tamper, timestamp)
        if tamper == "empty_body":
            body = b""
        signing_secret = self.note_webhook_secret(secrets.token_urlsafe(24)) if tamper == "wrong_secret" else secret
        digest = webhook_digest(signing_secret, timestamp - 1 if tamper == "different_timestamp" else timestamp, body)
        signature = {
            "truncated_signature": f"v0={digest[:-1]}",
            "v0_only": "v0=",
            "uppercase_hex": f"v0={digest.upper()}",
            "missing_v0": digest,
            "v1_scheme": f"v1={digest}",
        }.get(tamper, f"v0={digest}")
        if tamper == "body_byte":  # the last digit of event_ts: still valid JSON, one byte off
            at = body.index(b',"payload":') - 1
            body = body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]
        if tamper == "whitespace":
            body = json.dumps(envelope, separators=(", ", ": ")).encode()

        headers = [("Content-Type", "application/json"), ("User-Agent", "Zoom Marketplace/1.0a"),
                   ("Content-Length", str(len(body)))]
        if tamper != "missing_timestamp":
            headers.append(("x-zm-request-timestamp", str(timestamp)))
        if tamper != "missing_signature":
            headers.append(("x-zm-signature", signature))
        if tamper == "double_signature":  # a second, well-formed signature made with another secret
            other = self.note_webhook_secret(secrets.token_urlsafe(24))
            headers.append(("x-zm-signature", f"v0={webhook_digest(other, timestamp, body)}"))
        return headers, body, timestamp

    def webhook_payload(self, event, meeting, req, event_ts):
        """payload for one event: built from a held meeting (if any), then req["object"] merged over it."""
        if event == "endpoint.url_validation":
            return {"plainToken": secrets.token_urlsafe(16)}
        now = utc_iso(datetime.now(timezone.utc))
        raw = req.get("object", {})
        if event == "meeting.updated":
            obj = {k: meeting[k] for k in WEBHOOK_UPDATED_FIELDS if k in meeting}
        else:
            obj = dict(meeting)
        if event == "meeting.ended":
            obj["end_time"] = now
        if event in PARTICIPANT_EVENTS:
            wanted = dict(req.get("participant", {}))
            host = wanted.pop("host", False) is True
            obj["participant"] = {
                "user_id": str(16777216 + secrets.randbelow(10**7)),
                "user_name": "Participant",
                "id": raw.get("host_id", meeting.get("host_id", self.host_id)) if host else random_user_id(),
                "participant_uuid": random_user_id(),
                PARTICIPANT_EVENTS[event]: now,
                **wanted,
            }
        obj = deep_merge(obj, raw)
        payload = {"account_id": self.account_id, "object": obj}
        if event == "meeting.updated":  # the sandbox keeps no history: old_object defaults to object
            payload["old_object"] = deep_merge(obj, req.get("oldObject", {}))
            payload["time_stamp"] = event_ts
        return payload

    def note_webhook_secret(self, secret):
        with self.lock:
            if secret not in self.issued["webhookSecrets"]:
                self.issued["webhookSecrets"].append(secret)
        return secret

    # -- control API (/__sandbox/...)

    def more_control(self, key, payload):
        if key == "POST /__sandbox/webhooks/send":
            return self.send_webhook(payload)
        if key == "GET /__sandbox/webhooks":
            with self.lock:
                return Reply(200, copy.deepcopy(self.webhooks))
        # POST /__sandbox/uuid-mode
        mode = payload.get("mode") if isinstance(payload, dict) else None
        if mode not in UUID_MODES:
            return Reply(400, {"error": f"mode must be one of {sorted(UUID_MODES)}"})
        with self.lock:
            self.uuid_mode = mode
        return Reply(200, {"mode": mode})

def parse_args(argv):
    parser = argument_parser("Zoom OAuth + Meetings API sandbox (loopback only).")
    parser.add_argument("--account-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime, seconds")
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), help="vendored OpenAPI subset")
    parser.add_argument("--webhook-secret", help="default secret token for signing webhooks (never logged)")
    parser.add_argument("--webhook-target", help="default subscriber URL for /__sandbox/webhooks/send")
    return check_loopback(parser, parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    start_logging(Sandbox.name)
    serve(Sandbox(args, SpecValidator(args.spec)), args.host, args.port)


if __name__ == "__main__":
    main()

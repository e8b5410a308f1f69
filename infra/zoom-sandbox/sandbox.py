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
from urllib.parse import parse_qsl, unquote, urlsplit

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
# Zoom's list of time zone IDs (its API references' table; telemeet's adapter reads the same file).
ZOOM_ZONES = frozenset(
    line.strip()
    for line in (Path(__file__).resolve().parent / "spec" / "timezones.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)

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
# Waiting (README, "Where each behaviour comes from"): arriving in the waiting room carries the
# arrival's `date_time`; waiting for the host (join before host off) and joining once the host
# is there carry only the participant's `id` and `user_name`.
WAITING_ROOM_EVENTS = {"meeting.participant_joined_waiting_room": "date_time"}
JBH_EVENTS = {"meeting.participant_jbh_waiting", "meeting.participant_jbh_joined"}
WEBHOOK_SKEW = 301  # seconds: just outside the usual 5-minute replay window
WEBHOOK_TIMEOUT = 10  # seconds
HOST_EMAIL = "host@sandbox.invalid"  # the CLI account's one host user (its id is made up at start)
DAILY_CAP = 100  # meeting creates + updates per host user per UTC day (README: "Accounts and users")
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


def user_not_found(user_ref):
    return zoom_error(404, 1001, f"User does not exist: {user_ref}.")


def daily_cap_reached(cap):
    """Zoom's per-host refusal: no Retry-After, no X-RateLimit-Type (README: "Daily cap")."""
    return zoom_error(429, 429, f"You have exceeded the daily rate limit ({cap}) of Meeting Create/Update API "
                      "requests permitted for this particular user. You may resume these requests at GMT 00:00:00.")


def is_text(value):
    return isinstance(value, str) and bool(value)


@dataclass
class Account:
    """One Zoom account: its Server-to-Server OAuth app's credentials, webhook secret token and users."""

    account_id: str
    client_id: str
    client_secret: str
    webhook_secret: str | None
    users: list  # [{"id", "email"}]; the first is the owner (`me`)

    def find_user(self, ref):
        """`me` (the owner), a user id or an email (case-insensitive) of this account, else None."""
        if ref == "me":
            return self.users[0] if self.users else None
        for user in self.users:
            if user["id"] == ref or user["email"].lower() == ref.lower():
                return user
        return None

    def public(self):
        return {"accountId": self.account_id, "clientId": self.client_id, "users": [dict(u) for u in self.users]}


def parse_user(entry):
    """A {"id","email"} user from a control request (id made up Zoom-style when absent), or an error."""
    if not isinstance(entry, dict) or not is_text(entry.get("email")):
        return None, "a user needs an email (a non-empty string)"
    if "id" in entry and not is_text(entry["id"]):
        return None, "a user id must be a non-empty string"
    return {"id": entry.get("id") or random_user_id(), "email": entry["email"]}, None


def parse_account(payload):
    """An Account from POST /__sandbox/accounts, or an error message."""
    if not isinstance(payload, dict):
        return None, "body must be a JSON object"
    for name in ("accountId", "clientId", "clientSecret"):
        if not is_text(payload.get(name)):
            return None, f"{name} must be a non-empty string"
    if payload.get("webhookSecret") is not None and not is_text(payload["webhookSecret"]):
        return None, "webhookSecret must be a non-empty string"
    entries = payload.get("users", [])
    if not isinstance(entries, list):
        return None, "users must be a list"
    users = []
    for entry in entries:
        user, problem = parse_user(entry)
        if problem:
            return None, problem
        users.append(user)
    account = Account(payload["accountId"], payload["clientId"], payload["clientSecret"],
                      payload.get("webhookSecret"), [])
    for user in users:
        if account.find_user(user["email"]) or account.find_user(user["id"]):
            return None, "users must have distinct ids and emails"
        account.users.append(user)
    return account, None


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
    extra_control = [
        "POST /__sandbox/uuid-mode", "POST /__sandbox/webhooks/send", "GET /__sandbox/webhooks",
        "GET /__sandbox/accounts", "POST /__sandbox/accounts", "POST /__sandbox/accounts/{accountId}/users",
        "POST /__sandbox/daily-cap", "POST /__sandbox/whose-link",
    ]

    def __init__(self, args, validator):
        super().__init__()
        self.account_id = args.account_id  # the CLI (default) account
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.token_ttl = args.token_ttl
        self.validator = validator
        self.webhook_secret = args.webhook_secret
        self.webhook_target = args.webhook_target
        self.daily_cap = args.daily_cap
        self.host_id = random_user_id()  # the CLI account's host: stable for the process, across resets
        # Every secret handed out or used, kept across resets so log-leak checks stay complete.
        self.issued = {"accessTokens": [], "zakTokens": [], "passwords": [], "webhookSecrets": [],
                       "clientSecrets": [self.client_secret]}
        if self.webhook_secret:
            self.issued["webhookSecrets"].append(self.webhook_secret)
        self.reset()

    def reset(self):
        with self.lock:
            default = Account(self.account_id, self.client_id, self.client_secret, self.webhook_secret,
                              [{"id": self.host_id, "email": HOST_EMAIL}])
            self.accounts = {self.account_id: default}  # accountId -> Account; added ones are forgotten
            self.tokens = {}  # access token -> (expiry (monotonic seconds), accountId)
            self.meetings = {}  # id -> meeting object, as Zoom shows it
            self.deleted = {}  # id -> meeting object (recoverable)
            self.owners = {}  # meeting id -> accountId (live and deleted meetings)
            self.zaks = {}  # zak -> (meeting id, expiry datetime, accountId, user id)
            self.page_tokens = {}  # next_page_token -> ((list type, accountId, user id), offset, expiry monotonic)
            self.caps = {}  # None (everyone), accountId or (accountId, user id) -> daily cap
            self.usage = {}  # (accountId, user id) -> (UTC date, creates + updates that day)
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
        with self.lock:
            expiry, _ = self._bearer(headers)
        if expiry is None:
            return Reply(401, INVALID_TOKEN)
        if time.monotonic() >= expiry:
            return Reply(401, EXPIRED_TOKEN)
        return None

    def request_context(self, call):
        """accountId: the bearer token's account (for the OAuth call: the account_id asked for, when
        the credentials are that account's); userId: the host user the request acted for."""
        with self.lock:
            if call.key == OAUTH_TOKEN:
                account = self._granted_account(call)
                return {"accountId": account.account_id if account else None, "userId": None}
            account = self.accounts.get(self._bearer(call.headers)[1])
            user_id = None
            if account and "userId" in call.params:
                user = account.find_user(call.params["userId"])
                user_id = user["id"] if user else None
            elif account and call.params.get("meetingId", "").isdigit():
                meeting = self._owned(int(call.params["meetingId"]), account, deleted_too=True)
                user_id = meeting["host_id"] if meeting else None
            return {"accountId": account.account_id if account else None, "userId": user_id}

    # -- helpers (called with self.lock held)

    def _bearer(self, headers):
        """(expiry, accountId) of the request's bearer token, (None, None) when it has none we issued."""
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        return self.tokens.get(token.strip(), (None, None)) if scheme.lower() == "bearer" else (None, None)

    def _granted_account(self, call):
        """The account named by the grant's account_id, if the Basic credentials are its own."""
        account = self.accounts.get(form_params(call).get("account_id"))
        if account and basic_credentials(call.headers) == (account.client_id, account.client_secret):
            return account
        return None

    def _owned(self, meeting_id, account, deleted_too=False):
        """The meeting if it belongs to the account (a meeting of another account does not exist)."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None and deleted_too:
            meeting = self.deleted.get(meeting_id)
        return meeting if meeting is not None and self.owners.get(meeting_id) == account.account_id else None

    def _cap(self, account_id, user_id):
        for scope in ((account_id, user_id), account_id, None):
            if scope in self.caps:
                return self.caps[scope]
        return self.daily_cap

    def _spend(self, account_id, user_id):
        """Count one create/update for the host user today (UTC); its cap if that is spent instead."""
        today = datetime.now(timezone.utc).date()
        day, used = self.usage.get((account_id, user_id), (today, 0))
        used = used if day == today else 0
        cap = self._cap(account_id, user_id)
        if used >= cap:
            return cap
        self.usage[(account_id, user_id)] = (today, used + 1)
        return None

    def _new_zak(self, meeting_id, account_id, host_id):
        """A start URL whose zak names the host user (and, stricter than Zoom, the meeting)."""
        zak = self._issue("zakTokens", secrets.token_urlsafe(32))
        self.zaks[zak] = (meeting_id, datetime.now(timezone.utc) + ZAK_TTL, account_id, host_id)
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
        if call.key in (CREATE, UPDATE) and not errors:
            zone = call.json().get("timezone")
            if zone is not None and zone not in ZOOM_ZONES:
                # A guess: Zoom documents its list, not its answer to a zone outside it.
                errors = [{"field": "timezone", "message": "Invalid field."}]
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
        with self.lock:  # the token was checked by authenticate(); users resolve within its account
            account = self.accounts.get(self._bearer(call.headers)[1])
        if account is None:  # forgotten by a reset meanwhile
            return Reply(401, INVALID_TOKEN)
        return handler(call, account)

    def grant(self, call):
        """Server-to-Server OAuth: grant_type/account_id in the query or a form body. The Basic
        credentials must be some account's app; account_id must then be that very account."""
        params = form_params(call)
        invalid_client = Reply(400, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
        credentials = basic_credentials(call.headers)
        with self.lock:
            known = any(credentials == (a.client_id, a.client_secret) for a in self.accounts.values())
            asked = self.accounts.get(params.get("account_id"))
        if not known:
            return invalid_client
        if params.get("grant_type") != "account_credentials":
            return Reply(400, {"reason": "unsupported grant type", "error": "unsupported_grant_type"})
        if asked is None:
            return Reply(400, {"reason": "Invalid account_id", "error": "invalid_request"})
        if credentials != (asked.client_id, asked.client_secret):  # another account's app
            return invalid_client
        with self.lock:
            token = self._issue("accessTokens", secrets.token_urlsafe(48))
            self.tokens[token] = (time.monotonic() + self.token_ttl, asked.account_id)
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

    def create_meeting(self, call, account):
        req = call.json()
        now = datetime.now(timezone.utc)
        with self.lock:
            host = account.find_user(call.params["userId"])
            if host is None:
                return user_not_found(call.params["userId"])
            cap = self._spend(account.account_id, host["id"])
            if cap is not None:
                return daily_cap_reached(cap)
            meeting_id = self._new_meeting_id()
            password = req["password"] if "password" in req else random_alnum(10)
            numeric = password if password.isdigit() else random_digits(10)
            encrypted = secrets.token_urlsafe(24) + ".1"
            for secret in {password, numeric, encrypted} - {""}:
                self._issue("passwords", secret)
            meeting = {
                "uuid": self._new_uuid(),
                "id": meeting_id,
                "host_id": host["id"],
                "host_email": host["email"],
                "topic": req.get("topic", "Zoom Meeting"),
                "type": req.get("type", 2),
                "status": "waiting",
                "start_time": utc_iso(parse_time(req["start_time"]) if "start_time" in req else now),
                "duration": req.get("duration", 60),
                "timezone": req.get("timezone", "UTC"),
                "agenda": req.get("agenda", ""),
                "created_at": utc_iso(now),
                "start_url": self._new_zak(meeting_id, account.account_id, host["id"]),
                "join_url": f"{self.base_url}/j/{meeting_id}?pwd={encrypted}",
                "password": password,
                "h323_password": numeric,
                "pstn_password": numeric,
                "encrypted_password": encrypted,
                "settings": deep_merge(DEFAULT_SETTINGS, req.get("settings", {})),
                "pre_schedule": False,
            }
            self.meetings[meeting_id] = meeting
            self.owners[meeting_id] = account.account_id
            return Reply(201, copy.deepcopy(meeting))

    def list_meetings(self, call, account):
        list_type = call.query.get("type", "scheduled")
        page_size = int(call.query.get("page_size", 30))  # the spec caps it at 300
        page_size = page_size if page_size > 0 else 30
        now = datetime.now(timezone.utc)
        with self.lock:
            host = account.find_user(call.params["userId"])
            if host is None:
                return user_not_found(call.params["userId"])
            scope = (list_type, account.account_id, host["id"])
            offset = 0
            token = call.query.get("next_page_token")
            if token:
                saved = self.page_tokens.get(token)
                if saved is None or saved[0] != scope or time.monotonic() >= saved[2]:
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
            hosted = (m for m in self.meetings.values() if m["host_id"] == host["id"] and self._owned(m["id"], account))
            found = sorted((m for m in hosted if selected(m)), key=lambda m: (m["start_time"], m["id"]))
            page = found[offset : offset + page_size]
            next_token = ""
            if offset + page_size < len(found):
                next_token = secrets.token_urlsafe(24)
                self.page_tokens[next_token] = (scope, offset + page_size, time.monotonic() + PAGE_TOKEN_TTL)
            meetings = [{**{k: m[k] for k in LIST_FIELDS}, "agenda": m["agenda"][:250]} for m in page]
        return Reply(
            200,
            {"page_size": page_size, "total_records": len(found), "next_page_token": next_token, "meetings": meetings},
        )

    def get_meeting(self, call, account):
        meeting_id = int(call.params["meetingId"])
        with self.lock:
            meeting = self._owned(meeting_id, account)
            if meeting is None:
                return meeting_not_found(meeting_id)
            # a fresh start link on every read
            meeting["start_url"] = self._new_zak(meeting_id, account.account_id, meeting["host_id"])
            return Reply(200, copy.deepcopy(meeting))

    def update_meeting(self, call, account):
        meeting_id = int(call.params["meetingId"])
        req = call.json()
        with self.lock:
            meeting = self._owned(meeting_id, account)
            if meeting is None:
                return meeting_not_found(meeting_id)
            cap = self._spend(account.account_id, meeting["host_id"])  # counted against the meeting's host
            if cap is not None:
                return daily_cap_reached(cap)
            for key in ("topic", "duration", "timezone", "agenda"):
                if key in req:
                    meeting[key] = req[key]
            if "start_time" in req:
                meeting["start_time"] = utc_iso(parse_time(req["start_time"]))
            if "settings" in req:
                meeting["settings"] = deep_merge(meeting["settings"], req["settings"])
        return Reply(204)

    def delete_meeting(self, call, account):
        meeting_id = int(call.params["meetingId"])
        with self.lock:
            meeting = self._owned(meeting_id, account)
            if meeting is None:
                return meeting_not_found(meeting_id)
            if meeting["status"] == "started":
                return zoom_error(400, 3002, "Sorry, you cannot delete this meeting since it is in progress.")
            self.deleted[meeting_id] = self.meetings.pop(meeting_id)
        return Reply(204)

    def update_status(self, call, account):
        meeting_id = int(call.params["meetingId"])
        action = call.json()["action"]
        with self.lock:
            if action == "recover" and meeting_id in self.deleted and self._owned(meeting_id, account, True):
                self.meetings[meeting_id] = self.deleted.pop(meeting_id)
                self.meetings[meeting_id]["status"] = "waiting"
            meeting = self._owned(meeting_id, account)
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
                owner, expiry = self.zaks.get(query.get("zak", ""), (None, None))[:2]
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
            headers = {"X-RateLimit-Category": "Light", "X-RateLimit-Type": "QPS"}
            if rule.get("retryAfter") is not None:  # null: a 429 without Retry-After
                headers["Retry-After"] = rule["retryAfter"]
            return Reply(
                429,
                {"code": 429, "message": "You have exceeded the rate limit of 10 requests per second."},
                headers,
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
        account, meeting = self.webhook_source(req)
        if account is None:
            return bad("accountId: the sandbox holds no such account", 404)
        if meeting is None:
            return bad("meetingId: the sandbox holds no such meeting", 404)
        secret = req.get("secret") or account.webhook_secret
        if not secret:
            if account.account_id == self.account_id:
                return bad("no secret: pass secret or start the sandbox with --webhook-secret")
            return bad("no secret: pass secret or give the account a webhookSecret")
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

        now = time.time()
        event_ts = req.get("eventTs", int(now * 1000))
        timestamp = req.get("timestamp", int(now))
        payload = self.webhook_payload(event, meeting, req, event_ts, account)
        envelope = {"event": event, "event_ts": event_ts, "payload": payload}
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

    def webhook_source(self, req):
        """(account, meeting fields) a delivery speaks for: the account named by accountId, else the
        held meeting's account, else the CLI account; meeting fields {} without meetingId. None for
        an unknown account or meeting."""
        meeting, owner = {}, self.account_id
        with self.lock:
            if "meetingId" in req:
                meeting_id = req["meetingId"]
                meeting_id = int(meeting_id) if isinstance(meeting_id, str) and meeting_id.isdigit() else meeting_id
                # a deleted meeting still counts: meeting.deleted is sent after the delete
                found = (self.meetings.get(meeting_id) or self.deleted.get(meeting_id)) if is_int(meeting_id) else None
                meeting = {k: found[k] for k in WEBHOOK_OBJECT_FIELDS} if found else None
                owner = self.owners.get(meeting_id, owner) if found else owner
            named = req.get("accountId")
            account = self.accounts.get(owner if named is None else named) if isinstance(named, (str, type(None))) else None
        return account, meeting

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

    def webhook_payload(self, event, meeting, req, event_ts, account):
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
                "id": raw.get("host_id", meeting.get("host_id", account.users[0]["id"] if account.users else ""))
                if host else random_user_id(),
                "participant_uuid": random_user_id(),
                PARTICIPANT_EVENTS[event]: now,
                **wanted,
            }
        if event in WAITING_ROOM_EVENTS:
            obj["participant"] = {
                "user_id": str(16777216 + secrets.randbelow(10**7)),
                "user_name": "Participant",
                "id": random_user_id(),
                "participant_uuid": random_user_id(),
                WAITING_ROOM_EVENTS[event]: now,
                **req.get("participant", {}),
            }
        if event in JBH_EVENTS:
            obj["participant"] = {"id": random_user_id(), "user_name": "Participant", **req.get("participant", {})}
        obj = deep_merge(obj, raw)
        payload = {"account_id": account.account_id, "object": obj}
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

    def more_control(self, key, payload, params):
        if key == "POST /__sandbox/webhooks/send":
            return self.send_webhook(payload)
        if key == "GET /__sandbox/webhooks":
            with self.lock:
                return Reply(200, copy.deepcopy(self.webhooks))
        if key == "GET /__sandbox/accounts":
            with self.lock:
                return Reply(200, {"accounts": [a.public() for a in self.accounts.values()]})
        handler = {
            "POST /__sandbox/accounts": self.add_account,
            "POST /__sandbox/daily-cap": self.set_daily_cap,
            "POST /__sandbox/whose-link": self.whose_link,
        }.get(key)
        if handler:
            return handler(payload)
        if key == "POST /__sandbox/accounts/{accountId}/users":
            return self.add_user(params["accountId"], payload)
        # POST /__sandbox/uuid-mode
        mode = payload.get("mode") if isinstance(payload, dict) else None
        if mode not in UUID_MODES:
            return Reply(400, {"error": f"mode must be one of {sorted(UUID_MODES)}"})
        with self.lock:
            self.uuid_mode = mode
        return Reply(200, {"mode": mode})

    # -- accounts, users, caps and links (control API)

    def _user_taken(self, user):
        """A message if the user's id is taken in any account, else None (the caller holds the lock)."""
        if any(u["id"] == user["id"] for a in self.accounts.values() for u in a.users):
            return "a user with this id exists"
        return None

    def add_account(self, payload):
        account, problem = parse_account(payload)
        if problem:
            return Reply(400, {"error": problem})
        with self.lock:
            if account.account_id in self.accounts:
                return Reply(409, {"error": "an account with this accountId exists"})
            taken = next(filter(None, map(self._user_taken, account.users)), None)
            if taken:
                return Reply(409, {"error": taken})
            self.accounts[account.account_id] = account
            self._issue("clientSecrets", account.client_secret)
            if account.webhook_secret and account.webhook_secret not in self.issued["webhookSecrets"]:
                self._issue("webhookSecrets", account.webhook_secret)
            return Reply(201, {"accountId": account.account_id, "users": [dict(u) for u in account.users]})

    def add_user(self, account_id, payload):
        user, problem = parse_user(payload)
        if problem:
            return Reply(400, {"error": problem})
        with self.lock:
            account = self.accounts.get(account_id)
            if account is None:
                return Reply(404, {"error": "no such account"})
            taken = self._user_taken(user) or (account.find_user(user["email"]) and "a user with this email exists")
            if taken:
                return Reply(409, {"error": taken})
            account.users.append(user)
            return Reply(201, dict(user))

    def set_daily_cap(self, payload):
        """{"cap", "accountId"?, "userId"?}: one user's cap, an account's users', or everyone's."""
        cap = payload.get("cap") if isinstance(payload, dict) else None
        if not is_int(cap) or cap < 0:
            return Reply(400, {"error": "cap must be a non-negative integer"})
        account_id, user_ref = payload.get("accountId"), payload.get("userId")
        with self.lock:
            account = self.accounts.get(account_id if account_id is not None else self.account_id)
            if account is None or not isinstance(account_id, (str, type(None))):
                return Reply(404, {"error": "no such account"})
            user = account.find_user(user_ref) if isinstance(user_ref, str) else None
            if user_ref is not None and user is None:
                return Reply(404, {"error": "no such user in the account"})
            if user:
                scope = (account.account_id, user["id"])
            elif account_id is not None:
                scope = account.account_id
                self.caps = {k: v for k, v in self.caps.items() if not (isinstance(k, tuple) and k[0] == scope)}
            else:
                scope, self.caps = None, {}
            self.caps[scope] = cap
        return Reply(200, {"cap": cap, "accountId": account_id if user is None else account.account_id,
                           "userId": user["id"] if user else None})

    def whose_link(self, payload):
        """{"url": a start_url} -> the host user its zak names."""
        url = payload.get("url") if isinstance(payload, dict) else None
        if not isinstance(url, str):
            return Reply(400, {"error": "url must be a string"})
        try:
            zak = dict(parse_qsl(urlsplit(url).query)).get("zak", "")
        except ValueError:
            zak = ""
        with self.lock:
            found = self.zaks.get(zak)
            account = self.accounts.get(found[2]) if found else None
            user = account.find_user(found[3]) if account else None
        if user is None:
            return Reply(404, {"error": "no start link with this zak"})
        return Reply(200, {"accountId": account.account_id, "userId": user["id"], "email": user["email"],
                           "expired": datetime.now(timezone.utc) >= found[1]})


def parse_args(argv):
    parser = argument_parser("Zoom OAuth + Meetings API sandbox (loopback only).")
    parser.add_argument("--account-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime, seconds")
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), help="vendored OpenAPI subset")
    parser.add_argument("--webhook-secret", help="default secret token for signing webhooks (never logged)")
    parser.add_argument("--webhook-target", help="default subscriber URL for /__sandbox/webhooks/send")
    parser.add_argument("--daily-cap", type=int, default=DAILY_CAP,
                        help="meeting creates + updates per host user per UTC day (Zoom: 100); reset restores it")
    return check_loopback(parser, parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    start_logging(Sandbox.name)
    serve(Sandbox(args, SpecValidator(args.spec)), args.host, args.port)


if __name__ == "__main__":
    main()

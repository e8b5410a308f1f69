//! The service read as an attacker would (issue 15): each test names the hole it proves
//! closed. In-process handlers on real `lambda_http` requests against moto and the Zoom
//! sandbox; every refusal is the contract's error body, never a 5xx.

use serde_json::{Value, json};
use telemeet::App;
use telemeet::http::router::Function;
use telemeet_local::*;

async fn put(app: &App, path: &str, token: &str, body: &Value) -> Reply {
    let req = lambda_request("PUT", path, Some(token), Some(body));
    call(app, Function::CreateMeeting, req).await
}

async fn get(app: &App, path: &str, token: &str) -> Reply {
    let req = lambda_request("GET", path, Some(token), None);
    call(app, Function::GetMeetingLink, req).await
}

fn people(host: &str, participants: &[&str]) -> Value {
    json!({ "hostUserId": host, "participantUserIds": participants })
}

#[track_caller]
fn assert_mismatch(reply: &Reply) {
    assert_error(reply, 409, "CONFLICT");
    assert_eq!(
        reply.body["error"]["details"]["reason"], "SUBJECT_MISMATCH",
        "{:?}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_put_first_by_a_squatter_never_hands_the_real_host_someone_elses_room() {
    let (stack, _clock, app) = in_process_app().await;
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let doctor = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let path = "/conversations/conv-77/meeting";
    // The patient gets there first, naming an accomplice as host and listing the doctor.
    let squat = put(&app, path, &patient, &people("pat-8", &["dr-7", "pat-9"])).await;
    assert_eq!(squat.status, 201, "{:?}", squat.body);
    // The doctor's own call is refused, not answered with the squatter's room.
    let real = put(&app, path, &doctor, &people("dr-7", &["pat-9"])).await;
    assert_mismatch(&real);
    assert!(real.body.get("meetingId").is_none());
    // A patient is never a host, whatever the body says.
    let me_host = put(
        &app,
        "/conversations/conv-78/meeting",
        &patient,
        &people("pat-9", &["dr-7"]),
    )
    .await;
    assert_error(&me_host, 403, "FORBIDDEN");
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 1);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appointment_put_is_200_only_with_the_same_host_and_participant_set_else_409() {
    let (stack, _clock, app) = in_process_app().await;
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let path = "/appointments/appt-sq/meeting";
    let mut body = appointment_body();
    body["participantUserIds"] = json!(["pat-9", "pat-10"]);
    let first = put(&app, path, &service, &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    // The same people in another order (and another topic) is the same request.
    body["participantUserIds"] = json!(["pat-10", "pat-9"]);
    body["topic"] = json!("Follow-up");
    let same = put(&app, path, &service, &body).await;
    assert_eq!(same.status, 200, "{:?}", same.body);
    assert_eq!(same.body["meetingId"], first.body["meetingId"]);
    for (host, participants) in [
        ("dr-8", vec!["pat-9", "pat-10"]),
        ("dr-7", vec!["pat-9"]),
        ("dr-7", vec!["pat-9", "pat-10", "pat-11"]),
        ("dr-7", vec!["pat-9", "pat-8"]),
    ] {
        let mut other = body.clone();
        other["hostUserId"] = json!(host);
        other["participantUserIds"] = json!(participants);
        assert_mismatch(&put(&app, path, &service, &other).await);
    }
    let id = first.body["meetingId"].as_str().expect("id");
    let now = get(&app, &format!("/meetings/{id}"), &service).await;
    assert_eq!(
        now.body["version"], first.body["version"],
        "nothing changed"
    );
    assert_eq!(now.body["hostUserId"], "dr-7");
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 1);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_conversations_window_only_service_admin_or_someone_listed_before_starts_the_next()
{
    let (stack, clock, app) = in_process_app().await;
    let doctor = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let path = "/conversations/conv-79/meeting";
    let first = put(&app, path, &doctor, &people("dr-7", &["pat-9"])).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    clock.advance(chrono::Duration::seconds(3601));
    // Someone not in the previous meeting cannot start the next one by listing themselves.
    let outsider = day_token(&stack, "pat-8", "patient", "clinic-1");
    let taken = put(&app, path, &outsider, &people("dr-9", &["pat-8"])).await;
    assert_error(&taken, 403, "FORBIDDEN");
    let staff = day_token(&stack, "staff-3", "staff", "clinic-1");
    let by_staff = put(&app, path, &staff, &people("dr-7", &["pat-9", "staff-3"])).await;
    assert_error(&by_staff, 403, "FORBIDDEN");
    // The previous meeting's patient may.
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let next = put(&app, path, &patient, &people("dr-7", &["pat-9"])).await;
    assert_eq!(next.status, 201, "{:?}", next.body);
    assert_ne!(next.body["meetingId"], first.body["meetingId"]);
    // And service may, once that one's window is over too.
    clock.advance(chrono::Duration::seconds(3601));
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let by_service = put(&app, path, &service, &people("dr-8", &["pat-12"])).await;
    assert_eq!(by_service.status, 201, "{:?}", by_service.body);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 3);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_host_a_meeting_only_when_the_host_directory_maps_them() {
    let (stack, _clock, app) = in_process_app().await;
    let staff = day_token(&stack, "staff-1", "staff", "clinic-1");
    let path = "/conversations/conv-80/meeting";
    let body = people("staff-1", &["pat-9"]);
    assert_error(&put(&app, path, &staff, &body).await, 403, "FORBIDDEN");
    let mut appointment = appointment_body();
    appointment["hostUserId"] = json!("staff-1");
    let appt = "/appointments/appt-80/meeting";
    assert_error(
        &put(&app, appt, &staff, &appointment).await,
        403,
        "FORBIDDEN",
    );
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 0);
    // Mapped, they may.
    let admin = day_token(&stack, "adm", "admin", "clinic-1");
    let map = lambda_request(
        "PUT",
        "/org/hosts/staff-1",
        Some(&admin),
        Some(&json!({ "zoomUser": "desk@clinic.example" })),
    );
    assert_eq!(call(&app, Function::OrgAdmin, map).await.status, 200);
    assert_eq!(put(&app, path, &staff, &body).await.status, 201);
    assert_eq!(put(&app, appt, &staff, &appointment).await.status, 201);
    stack.finish(0).await;
}

// ---------------------------------------------------------------- helpers of the cases below

/// Request headers, name and value.
type Headers = Vec<(&'static str, String)>;

/// Any route, through the function that owns it (as API Gateway routes it).
async fn send(app: &App, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
    let req = lambda_request(method, path, Some(token), body);
    call(app, owner(method, path), req).await
}

fn owner(method: &str, path: &str) -> Function {
    let method = http::Method::from_bytes(method.as_bytes()).expect("method");
    let path = path.split('?').next().unwrap_or(path);
    telemeet::http::router::route(&method, path)
        .expect("a route")
        .route
        .owner()
}

/// A request with exactly these headers and this raw body (no bearer token added).
async fn raw(app: &App, method: &str, path: &str, headers: &[(&str, String)], body: &str) -> Reply {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let (parts, ()) = builder.body(()).expect("request").into_parts();
    let event = local_gateway::api_gateway_event(
        &parts,
        body.as_bytes(),
        "127.0.0.1:1".parse().expect("addr"),
        &format!("test-{}", rand::random::<u32>()),
    );
    let req = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    call(app, owner(method, path), req).await
}

/// A clinic-1 appointment meeting (host dr-7, participant pat-9), created by its service.
async fn meeting_of_clinic_1(stack: &Stack, app: &App, appointment: &str) -> Value {
    let service = day_token(stack, "svc-1", "service", "clinic-1");
    let path = format!("/appointments/{appointment}/meeting");
    let created = put(app, &path, &service, &appointment_body()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Caller claims for svc-1 of clinic-1, expiring at `exp`.
fn claims(exp: i64) -> Value {
    json!({
        "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE,
        "sub": "svc-1", "role": "service", "org": "clinic-1", "exp": exp,
    })
}

/// A JWT with this header, signed by hand with HMAC-SHA256 over `key`.
fn hmac_signed(header: &Value, claims: &Value, key: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64url(&mac.finalize().into_bytes()))
}

/// The stack's real HS256 secret, as the service reads it from Secrets Manager.
async fn hs256_secret(stack: &Stack) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws_config().await);
    let out = sm
        .get_secret_value()
        .secret_id(local_stack::AUTH_SECRET_ID)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .expect("GetSecretValue");
    let secret: Value = serde_json::from_str(out.secret_string().expect("text")).expect("JSON");
    secret["hs256Secret"]
        .as_str()
        .expect("hs256Secret")
        .to_owned()
}

/// The meeting as its own org's service reads it.
async fn read_back(stack: &Stack, app: &App, id: &str) -> Value {
    let service = day_token(stack, "svc-1", "service", "clinic-1");
    let now = get(app, &format!("/meetings/{id}"), &service).await;
    assert_eq!(now.status, 200, "{:?}", now.body);
    now.body
}

#[track_caller]
fn assert_refused(why: &str, reply: &Reply, status: u16, code: &str) {
    assert!(
        reply.status < 500,
        "{why}: {} {:?}",
        reply.status,
        reply.body
    );
    assert_eq!(reply.status, status, "{why}: {:?}", reply.body);
    assert_error(reply, status, code);
}

// ---------------------------------------------------------------- tokens

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_another_algorithm_or_outside_the_bearer_header_are_401_even_with_the_right_key()
{
    let (stack, clock, app) = in_process_app().await;
    let id = meeting_of_clinic_1(&stack, &app, "appt-alg").await["meetingId"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/meetings/{id}");
    let good = claims(telemeet::clock::Clock::now(clock.as_ref()).timestamp() + 600);
    let secret = hs256_secret(&stack).await;
    let with_key = |alg| {
        let header = jsonwebtoken::Header::new(alg);
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&header, &good, &key).expect("signed")
    };
    let hs512 = with_key(jsonwebtoken::Algorithm::HS512);
    let hs384 = with_key(jsonwebtoken::Algorithm::HS384);
    let rs_header = json!({ "alg": "RS256", "typ": "JWT" });
    let confused = hmac_signed(&rs_header, &good, local_stack::DEV_RS256_PUBLIC.as_bytes());
    let bearer = day_token(&stack, "svc-1", "service", "clinic-1");
    for t in [&hs512, &hs384, &confused] {
        stack.remember(t);
    }
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("svc-1:{bearer}"))
    };
    let bearer_of = |t: &str| auth(&format!("Bearer {t}"));
    let cases: Vec<(&str, String, Headers)> = vec![
        ("HS512, right key", path.clone(), bearer_of(&hs512)),
        ("HS384, right key", path.clone(), bearer_of(&hs384)),
        (
            "RS256 header, HMAC(public key)",
            path.clone(),
            bearer_of(&confused),
        ),
        (
            "?access_token=",
            format!("{path}?access_token={bearer}"),
            vec![],
        ),
        (
            "Basic <token>",
            path.clone(),
            auth(&format!("Basic {bearer}")),
        ),
        (
            "Basic user:token",
            path.clone(),
            auth(&format!("Basic {basic}")),
        ),
        ("no scheme", path.clone(), auth(&bearer)),
    ];
    for (why, target, headers) in cases {
        let r = raw(&app, "GET", &target, &headers, "").await;
        assert_refused(why, &r, 401, "UNAUTHENTICATED");
    }
    // The same claims as an HS256 bearer token are a caller: the refusals were the carrier.
    let ok = raw(&app, "GET", &path, &bearer_of(&bearer), "").await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    stack.finish(0).await;
}

fn auth(value: &str) -> Headers {
    vec![("authorization", value.to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_has_30_seconds_of_leeway_and_not_one_more() {
    let (stack, clock, app) = in_process_app().await;
    let id = meeting_of_clinic_1(&stack, &app, "appt-exp").await["meetingId"]
        .as_str()
        .expect("id")
        .to_owned();
    let now = telemeet::clock::Clock::now(clock.as_ref()).timestamp();
    let read = |token: String| {
        let req = lambda_request("GET", &format!("/meetings/{id}"), Some(&token), None);
        call(&app, Function::GetMeetingLink, req)
    };
    let within = read(stack.sign(Signer::Hs256, claims(now - 29))).await;
    assert_eq!(within.status, 200, "29 s past exp: {:?}", within.body);
    let past = read(stack.sign(Signer::Hs256, claims(now - 31))).await;
    assert_refused("31 s past exp", &past, 401, "UNAUTHENTICATED");
    // The same holds for RS256 tokens.
    let past = read(stack.sign(Signer::Rs256, claims(now - 31))).await;
    assert_refused("RS256, 31 s past exp", &past, 401, "UNAUTHENTICATED");
    stack.finish(0).await;
}

// ---------------------------------------------------------------- who may do what

/// Every route that names one meeting, with a body that would be valid.
fn meeting_routes(id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let m = format!("/meetings/{id}");
    vec![
        ("GET", m.clone(), None),
        ("GET", format!("{m}/link?role=host"), None),
        ("GET", format!("{m}/link?role=participant"), None),
        ("GET", format!("{m}/link"), None),
        (
            "PATCH",
            m.clone(),
            Some(json!({ "topic": "Moved", "durationMinutes": 45 })),
        ),
        ("DELETE", m.clone(), None),
        ("POST", format!("{m}/start"), None),
        ("POST", format!("{m}/end"), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_service_gets_404_on_every_route_of_a_meeting_and_changes_nothing() {
    let (stack, _clock, app) = in_process_app().await;
    let created = meeting_of_clinic_1(&stack, &app, "appt-x-org").await;
    let id = created["meetingId"].as_str().expect("id");
    let intruder = day_token(&stack, "svc-2", "service", "clinic-2");
    let mut routes = meeting_routes(id);
    routes.push(("GET", "/appointments/appt-x-org/meeting".into(), None));
    for (method, path, body) in &routes {
        let r = send(&app, method, path, &intruder, body.as_ref()).await;
        assert_refused(&format!("{method} {path}"), &r, 404, "NOT_FOUND");
    }
    let after = read_back(&stack, &app, id).await;
    assert_eq!(after["version"], created["version"], "nothing changed");
    assert_eq!(after, created);
    assert_eq!(
        stack.sandbox_count("PATCH /v2/meetings/{meetingId}").await,
        0
    );
    assert_eq!(
        stack.sandbox_count("DELETE /v2/meetings/{meetingId}").await,
        0
    );
    assert_eq!(stack.sandbox_count(GET_OP).await, 0, "no host link fetched");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_patient_reads_their_meeting_but_may_not_manage_it_list_others_or_run_the_org() {
    let (stack, _clock, app) = in_process_app().await;
    let created = meeting_of_clinic_1(&stack, &app, "appt-pat").await;
    let id = created["meetingId"].as_str().expect("id");
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    // They may see it (so the refusals below are 403, not 404).
    assert_eq!(
        get(&app, &format!("/meetings/{id}"), &patient).await.status,
        200
    );
    let link = get(&app, &format!("/meetings/{id}/link"), &patient).await;
    assert_eq!(link.body["role"], "participant", "{:?}", link.body);
    let m = format!("/meetings/{id}");
    let connection = stack.zoom_connection(&json!({}));
    let refused: Vec<(&str, String, Option<Value>)> = vec![
        ("PATCH", m.clone(), Some(json!({ "topic": "Moved" }))),
        ("DELETE", m.clone(), None),
        ("POST", format!("{m}/end"), None),
        ("GET", "/users/dr-7/meetings".into(), None),
        ("PUT", "/org/providers/zoom".into(), Some(connection)),
        ("DELETE", "/org/providers/zoom".into(), None),
        ("GET", "/org/providers".into(), None),
        (
            "PUT",
            "/org/settings".into(),
            Some(json!({ "provider": "jitsi" })),
        ),
        ("GET", "/org/settings".into(), None),
        (
            "PUT",
            "/org/hosts/pat-9".into(),
            Some(json!({ "zoomUser": "pat@clinic.example" })),
        ),
        ("GET", "/org/hosts/dr-7".into(), None),
        ("DELETE", "/org/hosts/dr-7".into(), None),
        ("GET", "/org/hosts".into(), None),
        (
            "POST",
            "/org/webhooks".into(),
            Some(json!({ "url": "https://hooks.example.com/h", "events": ["*"] })),
        ),
        ("GET", "/org/webhooks".into(), None),
        ("DELETE", "/org/webhooks/whsub_0".into(), None),
        ("POST", "/org/webhooks/whsub_0/rotate".into(), None),
    ];
    let tokens_before = stack.sandbox_count(TOKEN_OP).await;
    for (method, path, body) in &refused {
        let r = send(&app, method, path, &patient, body.as_ref()).await;
        assert_refused(&format!("{method} {path}"), &r, 403, "FORBIDDEN");
    }
    assert_eq!(
        read_back(&stack, &app, id).await["version"],
        created["version"]
    );
    // The connection was not even checked with Zoom for them.
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, tokens_before);
    let admin = day_token(&stack, "adm", "admin", "clinic-1");
    let settings = send(&app, "GET", "/org/settings", &admin, None).await;
    assert_eq!(settings.body["provider"], "zoom", "{:?}", settings.body);
    stack.finish(0).await;
}

// ---------------------------------------------------------------- list cursors

async fn dr_7s_list(app: &App, token: &str, query: String) -> Reply {
    let path = format!("/users/dr-7/meetings?{query}");
    send(app, "GET", &path, token, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_list_cursors_and_cursors_outside_their_window_are_400_naming_cursor() {
    let (stack, _clock, app) = in_process_app().await;
    for i in 0..3 {
        meeting_of_clinic_1(&stack, &app, &format!("appt-cur-{i}")).await;
    }
    let doctor = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let list = |query: String| dr_7s_list(&app, &doctor, query);
    let page = list("limit=1".into()).await;
    let real = page.body["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let forged = |v: Value| b64url(v.to_string().as_bytes());
    let own = |k: Value| forged(json!({ "o": "clinic-1", "u": "dr-7", "k": k }));
    let cases: Vec<(&str, String)> = vec![
        ("random text", "c".repeat(40)),
        ("not base64", "%%%%".into()),
        ("base64 of text", b64url(b"hello, cursor")),
        ("base64 of {}", forged(json!({}))),
        ("base64 of an array", forged(json!(["clinic-1", "dr-7"]))),
        (
            "no position",
            forged(json!({ "o": "clinic-1", "u": "dr-7" })),
        ),
        ("a number as position", own(json!(42))),
        ("position outside the list", own(json!("ZZZ#mtg_x"))),
        ("position of another partition", own(json!("PK#clinic-2"))),
        (
            "another org",
            forged(json!({ "o": "clinic-2", "u": "dr-7", "k": "AT#2030" })),
        ),
        (
            "another user",
            forged(json!({ "o": "clinic-1", "u": "pat-9", "k": "AT#2030" })),
        ),
    ];
    for (why, cursor) in cases {
        let r = list(format!("cursor={cursor}")).await;
        assert_refused(why, &r, 400, "VALIDATION_FAILED");
        assert_eq!(error_field(&r), "cursor", "{why}");
    }
    // A real cursor of this list, asked for a window it lies outside of.
    let r = list(format!("from=2099-01-01T00:00:00Z&cursor={real}")).await;
    assert_refused("outside from=", &r, 400, "VALIDATION_FAILED");
    assert_eq!(error_field(&r), "cursor");
    // The real cursor still works where it was issued.
    assert_eq!(list(format!("limit=1&cursor={real}")).await.status, 200);
    stack.finish(0).await;
}

/// The cursor is unsigned base64 JSON: a position the service never issued, in range and
/// in the caller's own list, is taken as it is and handed to DynamoDB as ExclusiveStartKey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_cursor_in_the_right_shape_with_an_oversized_position_is_400_naming_cursor() {
    let (stack, _clock, app) = in_process_app().await;
    meeting_of_clinic_1(&stack, &app, "appt-cur-big").await;
    let doctor = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let key = format!("AT#2030-01-01T00:00:00Z#{}", "m".repeat(2000));
    let cursor = b64url(
        json!({ "o": "clinic-1", "u": "dr-7", "k": key })
            .to_string()
            .as_bytes(),
    );
    let r = dr_7s_list(&app, &doctor, format!("cursor={cursor}")).await;
    assert_refused("oversized", &r, 400, "VALIDATION_FAILED");
    assert_eq!(error_field(&r), "cursor");
    stack.finish(0).await;
}

// ---------------------------------------------------------------- bodies

/// `PUT /appointments/{id}/meeting` with this raw body, as svc-1 of clinic-1.
async fn put_raw(stack: &Stack, app: &App, appointment: &str, body: &str) -> Reply {
    let token = day_token(stack, "svc-1", "service", "clinic-1");
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_owned()),
    ];
    let path = format!("/appointments/{appointment}/meeting");
    raw(app, "PUT", &path, &headers, body).await
}

/// The valid appointment body with one field replaced.
fn with(field: &str, value: Value) -> String {
    let mut body = appointment_body();
    body[field] = value;
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_appointment_bodies_are_400_naming_the_field_and_create_nothing() {
    let (stack, _clock, app) = in_process_app().await;
    let eleven: Vec<String> = (1..=11).map(|i| format!("pat-{i}")).collect();
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let deep_field = with("topic", json!(null)).replace("null", &deep_array);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "11 participants",
            with("participantUserIds", json!(eleven)),
            "participantUserIds",
        ),
        (
            "host among participants",
            with("participantUserIds", json!(["pat-9", "dr-7"])),
            "participantUserIds",
        ),
        (
            "duration as a string",
            with("durationMinutes", json!("30")),
            "durationMinutes",
        ),
        (
            "fractional duration",
            with("durationMinutes", json!(30.5)),
            "durationMinutes",
        ),
        (
            "201-character topic",
            with("topic", json!("x".repeat(201))),
            "topic",
        ),
        ("10,000-deep array", deep_array, "body"),
        ("10,000-deep object", deep_object, "body"),
        ("10,000-deep field value", deep_field, "body"),
    ];
    for (why, body, field) in cases {
        assert!(body.len() < 64 * 1024, "{why}: under the 413 limit");
        let r = put_raw(&stack, &app, "appt-body", &body).await;
        assert_refused(why, &r, 400, "VALIDATION_FAILED");
        assert_eq!(error_field(&r), field, "{why}");
    }
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        0,
        "nothing reached Zoom"
    );
    // The limits are where the contract puts them: 200 characters is a topic.
    let at_limit = put_raw(
        &stack,
        &app,
        "appt-body",
        &with("topic", json!("x".repeat(200))),
    )
    .await;
    assert_eq!(at_limit.status, 201, "{:?}", at_limit.body);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leap_second_start_time_is_400_naming_start_time() {
    let (stack, _clock, app) = in_process_app().await;
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT23:59:60Z");
    let r = put_raw(
        &stack,
        &app,
        "appt-leap",
        &with("startTime", json!(start.to_string())),
    )
    .await;
    assert_refused("PUT 23:59:60", &r, 400, "VALIDATION_FAILED");
    assert_eq!(error_field(&r), "startTime");
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 0);
    // Nor as a reschedule of an existing meeting.
    let created = meeting_of_clinic_1(&stack, &app, "appt-leap-2").await;
    let id = created["meetingId"].as_str().expect("id");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let change = json!({ "startTime": start.to_string() });
    let r = send(
        &app,
        "PATCH",
        &format!("/meetings/{id}"),
        &service,
        Some(&change),
    )
    .await;
    assert_refused("PATCH 23:59:60", &r, 400, "VALIDATION_FAILED");
    assert_eq!(error_field(&r), "startTime");
    assert_eq!(read_back(&stack, &app, id).await, created);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_bidi_control_characters_is_400_naming_topic() {
    let (stack, _clock, app) = in_process_app().await;
    // Trojan Source (CVE-2021-42574): embeddings, overrides and isolates reorder what a
    // reader sees; U+202E makes "Video consultation\u{202E}gnp.exe" read as "…exe.png".
    for c in [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}',
    ] {
        let topic = format!("Video consultation {c}gnp.exe");
        let r = put_raw(&stack, &app, "appt-bidi", &with("topic", json!(topic))).await;
        assert_refused(
            &format!("U+{:04X}", u32::from(c)),
            &r,
            400,
            "VALIDATION_FAILED",
        );
        assert_eq!(error_field(&r), "topic");
    }
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 0);
    stack.finish(0).await;
}

// ---------------------------------------------------------------- Zoom webhooks

/// A webhook delivery's whole answer, headers included (for the error-body checks).
async fn deliver_reply(app: &App, headers: &[(&str, String)], body: &str) -> Reply {
    let event = delivery(headers, body, false);
    let r = telemeet::http::webhook::handle(app, event, lambda_http::Context::default()).await;
    let body = match r.body {
        Some(lambda_http::Body::Text(t)) => serde_json::from_str(&t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Reply {
        status: u16::try_from(r.status_code).unwrap_or(0),
        headers: r.headers,
        body,
    }
}

fn zoom_event(kind: &str, zoom_id: &Value, ts: i64) -> String {
    let id: i64 = zoom_id
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a Zoom id");
    json!({ "event": kind, "event_ts": ts * 1000,
        "payload": { "account_id": "acc", "object": { "id": id, "uuid": "uuid-adv", "host_id": "h" } } })
    .to_string()
}

fn zoom_headers(ts: i64, signature: String) -> Headers {
    vec![
        ("x-zm-request-timestamp", ts.to_string()),
        ("x-zm-signature", signature),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_refusals_answer_the_contracts_error_body_and_300_s_of_skew_is_still_accepted() {
    let (stack, clock, app) = in_process_app().await;
    let created = meeting_of_clinic_1(&stack, &app, "appt-wh").await;
    let id = created["meetingId"].as_str().expect("id");
    let secret = stack.webhook_secret.clone();
    let now = telemeet::clock::Clock::now(clock.as_ref()).timestamp();
    let body = zoom_event("meeting.started", &created["providerMeetingId"], now);
    let good = sign(&secret, now, body.as_bytes());
    let signed_at = |ts: i64| zoom_headers(ts, sign(&secret, ts, body.as_bytes()));
    let mut changed = body.clone().into_bytes();
    changed[2] ^= 0x20; // "event" becomes "Event"
    let changed = String::from_utf8(changed).expect("text");
    let upper = format!("v0={}", good.trim_start_matches("v0=").to_uppercase());
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("301 s old", signed_at(now - 301), &body),
        ("301 s ahead", signed_at(now + 301), &body),
        // API Gateway joins a repeated header's values with a comma.
        (
            "two signatures",
            zoom_headers(now, format!("{good},{good}")),
            &body,
        ),
        ("upper-case hex", zoom_headers(now, upper), &body),
        (
            "one byte changed",
            zoom_headers(now, good.clone()),
            &changed,
        ),
    ];
    for (why, headers, payload) in cases {
        let r = deliver_reply(&app, &headers, payload).await;
        assert_refused(why, &r, 401, "UNAUTHENTICATED");
        assert_eq!(
            read_back(&stack, &app, id).await,
            created,
            "{why}: nothing written"
        );
    }
    // The window is 300 s both ways, inclusive: the refusals above were the extra second.
    let r = deliver_reply(&app, &signed_at(now - 300), &body).await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (200, &json!("applied")),
        "{:?}",
        r.body
    );
    let ended = zoom_event("meeting.ended", &created["providerMeetingId"], now + 1);
    let ahead = zoom_headers(now + 300, sign(&secret, now + 300, ended.as_bytes()));
    let r = deliver_reply(&app, &ahead, &ended).await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (200, &json!("applied")),
        "{:?}",
        r.body
    );
    assert_eq!(read_back(&stack, &app, id).await["status"], "ended");
    stack.finish(0).await;
}

//! Guarantee 5: secrets come from Secrets Manager, are read lazily and cached per container
//! for at most 300 s, are read once more after an authentication failure (a rotation), and
//! never appear in logs or responses.

use aws_sdk_secretsmanager::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

/// Every `GetSecretValue`, by secret id.
#[derive(Debug, Default)]
struct Reads(Mutex<BTreeMap<String, u32>>);

impl Reads {
    fn of(&self, id: &str) -> u32 {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug)]
struct Counting(Arc<Reads>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "secret-reads"
    }

    fn read_before_execution(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput;
        if let Some(id) = ctx
            .input()
            .downcast_ref::<GetSecretValueInput>()
            .and_then(|i| i.secret_id())
        {
            *self
                .0
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id.to_owned())
                .or_default() += 1;
        }
        Ok(())
    }
}

/// An in-process stack whose apps read secrets through a counting client.
async fn counted_stack() -> (Stack, Arc<Reads>) {
    let mut stack = in_process_stack().await;
    let reads = Arc::new(Reads::default());
    let config = aws_sdk_secretsmanager::config::Builder::from(&stack.aws_config().await)
        .interceptor(Counting(reads.clone()))
        .build();
    stack.secretsmanager = Some(aws_sdk_secretsmanager::Client::from_conf(config));
    (stack, reads)
}

/// No response body holds a secret the stack knows.
async fn assert_no_secret_in(stack: &Stack, replies: &[&Reply]) {
    let secrets = stack.secrets().await;
    for r in replies {
        let body = r.body.to_string();
        assert!(
            !secrets.iter().any(|s| body.contains(s.as_str())),
            "a response carries a secret"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_read_on_first_use_once_per_container_and_again_after_300_seconds() {
    let (stack, reads) = counted_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    assert_eq!(
        reads.of(local_stack::AUTH_SECRET_ID),
        0,
        "nothing is read at init"
    );
    let token = day_token(&stack, "svc-1", "service", "clinic-1");
    let get = || lambda_request("GET", "/meetings/mtg_none", Some(&token), None);
    for _ in 0..5 {
        assert_eq!(
            call(&app, Function::GetMeetingLink, get()).await.status,
            404
        );
    }
    assert_eq!(
        reads.of(local_stack::AUTH_SECRET_ID),
        1,
        "cached per container"
    );
    assert_eq!(
        reads.of(local_stack::ZOOM_SECRET_ID),
        0,
        "no provider secret until a provider is used"
    );
    let put = |appt: &str| {
        lambda_request(
            "PUT",
            &format!("/appointments/{appt}/meeting"),
            Some(&token),
            Some(&appointment_body()),
        )
    };
    let created = call(&app, Function::CreateMeeting, put("appt-s1")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        call(&app, Function::CreateMeeting, put("appt-s2"))
            .await
            .status,
        201
    );
    assert_eq!(reads.of(local_stack::ZOOM_SECRET_ID), 1);
    clock.advance(chrono::Duration::seconds(299));
    call(&app, Function::GetMeetingLink, get()).await;
    assert_eq!(
        reads.of(local_stack::AUTH_SECRET_ID),
        1,
        "still fresh at 299 s"
    );
    clock.advance(chrono::Duration::seconds(2));
    call(&app, Function::GetMeetingLink, get()).await;
    assert_eq!(
        reads.of(local_stack::AUTH_SECRET_ID),
        2,
        "read again after 300 s"
    );
    assert_no_secret_in(&stack, &[&created]).await;
    stack.finish(0).await;
}

/// The secret's current value, as JSON.
async fn current_secret(stack: &Stack, id: &str) -> Value {
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws_config().await);
    let out = sm
        .get_secret_value()
        .secret_id(id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .expect("GetSecretValue");
    serde_json::from_str(out.secret_string().expect("a string secret")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_zoom_credentials_are_read_again_once_after_zoom_refuses_them_but_not_in_a_flood() {
    let (stack, reads) = counted_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let token = day_token(&stack, "svc-1", "service", "clinic-1");
    let put = |appt: &str| {
        lambda_request(
            "PUT",
            &format!("/appointments/{appt}/meeting"),
            Some(&token),
            Some(&appointment_body()),
        )
    };
    let current = current_secret(&stack, local_stack::ZOOM_SECRET_ID).await;
    let mut wrong = current.clone();
    wrong["clientSecret"] = json!("not-the-zoom-client-secret");
    stack.put_secret(local_stack::ZOOM_SECRET_ID, &wrong).await;
    // Read (wrong) and refused: a value read moments ago is not read again (the 30 s floor
    // of every re-read), so the answer is a configuration error, 502.
    let refused = call(&app, Function::CreateMeeting, put("appt-wrong")).await;
    assert_error(&refused, 502, "PROVIDER_REJECTED");
    assert_eq!(reads.of(local_stack::ZOOM_SECRET_ID), 1);
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 1);
    // Rotated back: within 30 s of the read a refusal still reads nothing (a flood of
    // refusals is no flood of reads).
    stack
        .put_secret(local_stack::ZOOM_SECRET_ID, &current)
        .await;
    let again = call(&app, Function::CreateMeeting, put("appt-wrong")).await;
    assert_error(&again, 502, "PROVIDER_REJECTED");
    assert_eq!(reads.of(local_stack::ZOOM_SECRET_ID), 1);
    // Past the floor, Zoom's refusal of the cached value makes the one re-read that picks
    // up the right one.
    clock.advance(chrono::Duration::seconds(31));
    let created = call(&app, Function::CreateMeeting, put("appt-right")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(reads.of(local_stack::ZOOM_SECRET_ID), 2);
    assert_eq!(
        stack.sandbox_count(TOKEN_OP).await,
        4,
        "two refused grants, one refused then one accepted"
    );
    assert_no_secret_in(&stack, &[&refused, &created]).await;
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_caller_key_is_read_again_after_a_bad_signature_but_not_in_a_flood() {
    let (stack, reads) = counted_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let old = day_token(&stack, "svc-1", "service", "clinic-1");
    let get = |t: &str| lambda_request("GET", "/meetings/mtg_none", Some(t), None);
    assert_eq!(
        call(&app, Function::GetMeetingLink, get(&old)).await.status,
        404
    );
    // The platform rotates its signing key.
    let mut auth = current_secret(&stack, local_stack::AUTH_SECRET_ID).await;
    let new_key = "rotated-hs256-signing-key-0123456789abcdef";
    auth["hs256Secret"] = json!(new_key);
    // Put directly: the issuer and audience it also holds are names, not secrets.
    aws_sdk_secretsmanager::Client::new(&stack.aws_config().await)
        .put_secret_value()
        .secret_id(local_stack::AUTH_SECRET_ID)
        .secret_string(auth.to_string())
        .send()
        .await
        .expect("PutSecretValue");
    stack.remember(new_key);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE, "sub": "svc-1",
        "role": "service", "org": "clinic-1", "iat": now, "exp": now + 86_400,
    });
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let signed = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(new_key.as_bytes()),
    )
    .expect("a token");
    stack.remember(&signed);
    // Within 30 s of the last read, bad signatures do not read the secret again.
    for _ in 0..10 {
        assert_eq!(
            call(&app, Function::GetMeetingLink, get(&signed))
                .await
                .status,
            401
        );
    }
    assert_eq!(
        reads.of(local_stack::AUTH_SECRET_ID),
        1,
        "no flood of reads"
    );
    clock.advance(chrono::Duration::seconds(31));
    let accepted = call(&app, Function::GetMeetingLink, get(&signed)).await;
    assert_eq!(
        accepted.status, 404,
        "the new key is read once and accepted"
    );
    assert_eq!(reads.of(local_stack::AUTH_SECRET_ID), 2);
    assert_no_secret_in(&stack, &[&accepted]).await;
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orgs_own_secret_is_read_once_per_container_for_at_most_300_seconds_and_its_token_once()
{
    let (stack, reads) = counted_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let mut connection = stack.zoom_account(&["dr1@cached.example"]).await;
    connection["defaultUser"] = json!("dr1@cached.example");
    let admin = day_token(&stack, "adm", "admin", "clinic-c");
    let req = lambda_request(
        "PUT",
        "/org/providers/zoom",
        Some(&admin),
        Some(&connection),
    );
    let r = call(&app, Function::OrgAdmin, req).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let secret_id = format!("{}clinic-c/zoom", local_stack::ORG_SECRETS_PREFIX);
    let (read_before, grants_before) = (reads.of(&secret_id), stack.sandbox_count(TOKEN_OP).await);
    let token = day_token(&stack, "svc", "service", "clinic-c");
    let mut replies = Vec::new();
    // (seconds on, creates, reads of the org's secret so far)
    let steps = [
        (0, 3, 1, "cached per container"),
        (299, 1, 1, "still fresh at 299 s"),
        (2, 1, 2, "read again after 300 s"),
    ];
    for (seconds, creates, expected, what) in steps {
        clock.advance(chrono::Duration::seconds(seconds));
        for _ in 0..creates {
            let path = format!("/appointments/appt-c{}/meeting", replies.len());
            let req = lambda_request("PUT", &path, Some(&token), Some(&appointment_body()));
            let made = call(&app, Function::CreateMeeting, req).await;
            assert_eq!(made.status, 201, "{:?}", made.body);
            replies.push(made);
        }
        assert_eq!(reads.of(&secret_id) - read_before, expected, "{what}");
    }
    assert_eq!(
        stack.sandbox_count(TOKEN_OP).await - grants_before,
        1,
        "one token grant for the org's account: cached until shortly before it expires"
    );
    assert_no_secret_in(&stack, &replies.iter().collect::<Vec<_>>()).await;
    stack.finish(0).await;
}

/// A signed Zoom delivery of `body` with `secret` at the clock's now.
fn signed_with(
    secret: &str,
    clock: &telemeet::clock::ManualClock,
    body: &str,
) -> lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest {
    let ts = telemeet::clock::Clock::now(clock).timestamp();
    let signature = sign(secret, ts, body.as_bytes());
    let headers = [
        ("x-zm-request-timestamp", ts.to_string()),
        ("x-zm-signature", signature),
    ];
    delivery(&headers, body, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_or_guessable_webhook_secret_refuses_every_delivery_and_says_why() {
    let (stack, clock, app) = in_process_app().await;
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let req = lambda_request(
        "PUT",
        "/appointments/appt-ph/meeting",
        Some(&service),
        Some(&appointment_body()),
    );
    let created = call(&app, Function::CreateMeeting, req).await;
    let zoom_id: i64 = created.body["providerMeetingId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a Zoom meeting number");
    let good = stack.webhook_secret.clone();
    let cases = [
        ("CHANGE-ME", json!({ "secretToken": "CHANGE-ME" })),
        ("0123456789", json!({ "secretToken": "0123456789" })),
        (
            good.as_str(),
            json!({ "secretToken": good, "previousSecretToken": "change-me-when-rotating" }),
        ),
    ];
    for (signing, secret) in cases {
        stack
            .put_secret(local_stack::ZOOM_WEBHOOK_SECRET_ID, &secret)
            .await;
        // Past the cache's 300 s, so the container reads the new value.
        clock.advance(chrono::Duration::seconds(301));
        let ts = telemeet::clock::Clock::now(clock.as_ref()).timestamp();
        let validation = json!({ "event": "endpoint.url_validation", "event_ts": ts * 1000, "payload": { "plainToken": "plain-1" } }).to_string();
        let (status, _) = deliver(&app, signed_with(signing, &clock, &validation)).await;
        assert_eq!(status, 401, "url validation signed with an unusable secret");
        let ended = json!({ "event": "meeting.ended", "event_ts": ts * 1000, "payload": { "account_id": "a", "object": { "id": zoom_id, "uuid": "u", "host_id": "h" } } }).to_string();
        let (status, _) = deliver(&app, signed_with(signing, &clock, &ended)).await;
        assert_eq!(status, 401, "an event signed with an unusable secret");
    }
    let id = created.body["meetingId"].as_str().expect("id");
    let now = telemeet::clock::Clock::now(clock.as_ref()).timestamp();
    let later = stack.sign(
        Signer::Hs256,
        json!({ "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE, "sub": "svc-1", "role": "service", "org": "clinic-1", "iat": now, "exp": now + 3600 }),
    );
    let req = lambda_request("GET", &format!("/meetings/{id}"), Some(&later), None);
    let read = call(&app, Function::GetMeetingLink, req).await;
    assert_eq!(read.body["status"], "scheduled", "nothing was written");
    let logs = stack.logs();
    for why in ["placeholder value", "shorter than 16 bytes"] {
        assert!(
            logs.iter().any(|l| l.contains(why) && l.contains("ERROR")),
            "an error line says why: {why}"
        );
    }
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_key_secret_still_holding_a_placeholder_accepts_no_token() {
    let (stack, _clock, app) = in_process_app().await;
    let secret = current_secret(&stack, local_stack::AUTH_SECRET_ID).await;
    // (A test audience: the stack's own is a word the secret ids contain, and every value
    // put here counts as a secret in the log checks.)
    let placeholder = json!({ "issuer": "CHANGE-ME", "audience": "test-audience-1", "hs256Secret": secret["hs256Secret"] });
    stack
        .put_secret(local_stack::AUTH_SECRET_ID, &placeholder)
        .await;
    // Someone holding the key signs for the placeholder issuer: refused, never accepted.
    let now = chrono::Utc::now().timestamp();
    let token = stack.sign(
        Signer::Hs256,
        json!({ "iss": "CHANGE-ME", "aud": "test-audience-1", "sub": "svc-1", "role": "service", "org": "clinic-1", "iat": now, "exp": now + 3600 }),
    );
    let req = lambda_request("GET", "/meetings/mtg_none", Some(&token), None);
    assert_error(
        &call(&app, Function::GetMeetingLink, req).await,
        500,
        "INTERNAL",
    );
    stack.finish(0).await;
}

//! Guarantee 4: provider calls are bounded. Every fault the Zoom sandbox can inject ends in
//! the documented answer, and afterwards our table and Zoom agree (no orphan, no duplicate).

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use telemeet::clock::Wait;
use telemeet::http::router::Function;
use telemeet::providers::retry::RetryPolicy;
use telemeet::service::Settings;
use telemeet_local::*;

/// Our meetings and Zoom's are the same set.
async fn assert_table_matches_zoom(stack: &Stack, created: &[&Value]) {
    let zoom = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    let mut at_zoom: Vec<String> = zoom["meetings"]
        .as_array()
        .expect("meetings")
        .iter()
        .map(|m| m["id"].to_string())
        .collect();
    let mut ours: Vec<String> = created
        .iter()
        .map(|m| {
            m["providerMeetingId"]
                .as_str()
                .expect("providerMeetingId")
                .to_owned()
        })
        .collect();
    at_zoom.sort();
    ours.sort();
    assert_eq!(at_zoom, ours, "Zoom holds exactly our meetings");
}

fn quick_retries() -> Settings {
    Settings {
        provider_retry: RetryPolicy {
            attempt_timeout: Duration::from_millis(500),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn five_hundreds_below_the_attempt_limit_are_retried_and_create_one_meeting() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let token = stack.token("svc-1", "service", "clinic-1");
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "status", "status": 502, "times": 2 }))
        .await;
    let r = api
        .put_appointment(&token, "appt-5xx", &appointment_body())
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 3);
    // A 5xx may have created it: each retry looked first.
    assert_eq!(stack.sandbox_count(LIST_OP).await, 2);
    assert_table_matches_zoom(&stack, &[&r.body]).await;
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_waits_the_limits_whole_second_not_a_jittered_instant() {
    let (stack, clock, app) = in_process_app().await;
    let token = stack.token("svc-1", "service", "clinic-1");
    // Zoom's per-second limit answered without a header: a retry within 200 ms would meet
    // the same second's limit.
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "rate_limit", "retryAfter": null }))
        .await;
    let put = lambda_request(
        "PUT",
        "/appointments/appt-429-bare/meeting",
        Some(&token),
        Some(&appointment_body()),
    );
    let made = call(&app, Function::CreateMeeting, put).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(
        clock.waits_for(Wait::ProviderRetry),
        [Duration::from_secs(1)]
    );
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 2);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_its_retry_after_in_seconds_or_as_a_date() {
    let stack = in_process_stack().await;
    // Waits are recorded by the clock, not slept.
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let waits = || clock.waits_for(Wait::ProviderRetry);
    let token = stack.token("svc-1", "service", "clinic-1");
    let put = |appointment: &str| {
        lambda_request(
            "PUT",
            &format!("/appointments/{appointment}/meeting"),
            Some(&token),
            Some(&appointment_body()),
        )
    };

    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "rate_limit", "retryAfter": "2" }))
        .await;
    let first = call(&app, Function::CreateMeeting, put("appt-429-s")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(waits(), [Duration::from_secs(2)]);

    // A date 4 s after the service's now (its clock moved by the wait above).
    let at = (telemeet::clock::Clock::now(clock.as_ref()) + chrono::Duration::seconds(4))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "rate_limit", "retryAfter": at }))
        .await;
    let second = call(&app, Function::CreateMeeting, put("appt-429-date")).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    let waited = waits()[1];
    assert!(
        (Duration::from_secs(2)..=Duration::from_secs(4)).contains(&waited),
        "{waited:?}"
    );

    // A wait that does not fit the request's time is not waited: 429 to the caller.
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "rate_limit", "retryAfter": "120" }))
        .await;
    let refused = call(&app, Function::CreateMeeting, put("appt-429-long")).await;
    assert_error(&refused, 429, "PROVIDER_RATE_LIMITED");
    assert_eq!(refused.header("retry-after"), Some("120"));
    assert_eq!(waits().len(), 2);
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        5,
        "two waited out, one refused"
    );
    assert_table_matches_zoom(&stack, &[&first.body, &second.body]).await;
    stack.finish(0).await;
}

#[tokio::test]
async fn the_daily_limit_fails_fast_as_provider_rate_limited() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let token = stack.token("svc-1", "service", "clinic-1");
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "daily_limit" }))
        .await;
    let refused = api
        .put_appointment(&token, "appt-daily", &appointment_body())
        .await;
    assert_error(&refused, 429, "PROVIDER_RATE_LIMITED");
    assert!(
        refused.header("retry-after").is_some(),
        "until Zoom's daily reset"
    );
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 1, "no retry");
    assert_eq!(stack.sandbox_count(LIST_OP).await, 0);
    // Nothing was half-written: the next PUT creates it.
    let created = api
        .put_appointment(&token, "appt-daily", &appointment_body())
        .await;
    assert_eq!(created.status, 201);
    assert_table_matches_zoom(&stack, &[&created.body]).await;
    stack.finish(0).await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_and_the_call_repeated() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let token = stack.token("svc-1", "service", "clinic-1");
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "token_expired" }))
        .await;
    let r = api
        .put_appointment(&token, "appt-401", &appointment_body())
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 2);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 2);
    assert_table_matches_zoom(&stack, &[&r.body]).await;
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answering_after_its_timeout_is_not_retried_blindly_and_is_adopted_later() {
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), quick_retries())
        .await
        .expect("app");
    let token = stack.token("svc-1", "service", "clinic-1");
    let put = || {
        lambda_request(
            "PUT",
            "/appointments/appt-slow/meeting",
            Some(&token),
            Some(&appointment_body()),
        )
    };
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "delay", "ms": 1500 }))
        .await;

    let gave_up = call(&app, Function::CreateMeeting, put()).await;
    assert_error(&gave_up, 503, "PROVIDER_UNAVAILABLE");
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        1,
        "a create in flight is never repeated"
    );
    assert!(
        zoom_meetings_reach(&stack, 1).await,
        "the slow create landed at Zoom"
    );
    let adopted = call(&app, Function::CreateMeeting, put()).await;
    assert_eq!(adopted.status, 201, "{:?}", adopted.body);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 1);
    assert_table_matches_zoom(&stack, &[&adopted.body]).await;
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_slower_than_its_timeout_is_retried() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), quick_retries())
        .await
        .expect("app");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let host = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let created = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-read/meeting",
            Some(&service),
            Some(&appointment_body()),
        ),
    )
    .await;
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    clock.advance(chrono::Duration::minutes(91));
    stack
        .fault(json!({ "operation": GET_OP, "kind": "delay", "ms": 1500 }))
        .await;
    let link = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}/link"), Some(&host), None),
    )
    .await;
    assert_eq!(link.status, 200, "{:?}", link.body["error"]);
    assert_eq!(
        stack.sandbox_count(GET_OP).await,
        2,
        "timed out once, then answered"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_link_fetches_after_the_token_expired_make_one_token_request() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = Arc::new(
        stack
            .app(clock.clone(), Settings::default())
            .await
            .expect("app"),
    );
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let host = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let created = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-token/meeting",
            Some(&service),
            Some(&appointment_body()),
        ),
    )
    .await;
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 1);

    // Two hours on: the token (1 h) and the stored start_url (2 h) have both expired, so
    // every host link needs Zoom, and Zoom needs a new token.
    clock.advance(chrono::Duration::hours(2));
    let start = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, start) = (app.clone(), start.clone());
            let req = lambda_request("GET", &format!("/meetings/{id}/link"), Some(&host), None);
            tokio::spawn(async move {
                start.wait().await;
                call(&app, Function::GetMeetingLink, req).await.status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    assert_eq!(
        stack.sandbox_count(TOKEN_OP).await,
        2,
        "one renewal for twenty callers"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_zoom_credentials_answer_provider_rejected_with_the_hint_in_the_log_only() {
    let stack = in_process_stack().await;
    stack
        .put_secret(
            local_stack::ZOOM_SECRET_ID,
            &json!({ "accountId": "acc-wrong", "clientId": "cid-wrong", "clientSecret": "not-the-secret-123" }),
        )
        .await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    let token = stack.token("svc-1", "service", "clinic-1");
    let r = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-creds/meeting",
            Some(&token),
            Some(&appointment_body()),
        ),
    )
    .await;
    assert_error(&r, 502, "PROVIDER_REJECTED");
    let body = r.body.to_string();
    assert!(
        !body.contains("clientSecret") && !body.contains("ZOOM_SECRET_ID"),
        "no hint in the body"
    );
    // One configuration hint per refused token request.
    assert_eq!(
        stack
            .log_lines_with("check accountId, clientId and clientSecret", 1)
            .await,
        1
    );
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 0);
    // A value read moments ago is not read again on a refusal (the 30 s floor; the re-read
    // after it is guarantee 5's test): one grant, given up.
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 1);
    stack.finish(0).await;
}

fn jitsi_claims(stack: &Stack, url: &str, room: &str) -> Value {
    let prefix = format!("https://{}/{room}?jwt=", local_stack::JITSI_DOMAIN);
    let token = url
        .strip_prefix(&prefix)
        .expect("a link to exactly this room");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["jitsi"]);
    validation.set_issuer(&["telemeet-local"]);
    let key = jsonwebtoken::DecodingKey::from_secret(stack.jitsi_app_secret.as_bytes());
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("a valid Jitsi token")
        .claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_zoom_stays_down_the_meeting_is_created_at_the_fallback_provider() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app_configured(
            clock.clone(),
            quick_retries(),
            &[("FALLBACK_PROVIDER", "jitsi")],
        )
        .await
        .expect("app");
    let service = stack.token("svc-1", "service", "clinic-1");
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "status", "status": 503, "times": 3 }))
        .await;
    let body = appointment_body();
    let created = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-fallback/meeting",
            Some(&service),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["provider"], "jitsi", "recorded on the meeting");
    let room = created.body["providerMeetingId"]
        .as_str()
        .expect("room")
        .to_owned();
    assert!(
        room.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert_table_matches_zoom(&stack, &[]).await;

    // Per-caller links for exactly this room; moderator only for the host.
    let id = created.body["meetingId"].as_str().expect("id");
    let link = |sub: &str, role: &str| {
        let token = stack.token(sub, role, "clinic-1");
        lambda_request("GET", &format!("/meetings/{id}/link"), Some(&token), None)
    };
    let host = call(&app, Function::GetMeetingLink, link("dr-7", "practitioner")).await;
    stack.remember(host.body["url"].as_str().unwrap_or_default());
    let host_claims = jitsi_claims(&stack, host.body["url"].as_str().expect("url"), &room);
    assert_eq!(host_claims["room"], room.as_str());
    assert_eq!(host_claims["sub"], local_stack::JITSI_DOMAIN);
    assert_eq!(host_claims["context"]["user"]["moderator"], "true");
    assert_eq!(host_claims["context"]["user"]["id"], "dr-7");
    let patient = call(&app, Function::GetMeetingLink, link("pat-9", "patient")).await;
    stack.remember(patient.body["url"].as_str().unwrap_or_default());
    let patient_claims = jitsi_claims(&stack, patient.body["url"].as_str().expect("url"), &room);
    assert_eq!(patient_claims["context"]["user"]["moderator"], "false");
    assert_eq!(patient_claims["context"]["user"]["id"], "pat-9");
    let start = chrono::DateTime::parse_from_rfc3339(body["startTime"].as_str().expect("start"))
        .expect("time");
    let latest = (start + chrono::Duration::minutes(30) + chrono::Duration::hours(1)).timestamp();
    assert_eq!(
        patient_claims["exp"], latest,
        "bounded by the meeting's end plus the grace period"
    );

    // A caller who names the provider gets no fallback: 503, nothing written.
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "status", "status": 503, "times": 3 }))
        .await;
    let mut named = body.clone();
    named["provider"] = json!("zoom");
    let refused = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-named/meeting",
            Some(&service),
            Some(&named),
        ),
    )
    .await;
    assert_error(&refused, 503, "PROVIDER_UNAVAILABLE");
    let nothing = call(
        &app,
        Function::GetMeetingLink,
        lambda_request(
            "GET",
            "/appointments/appt-named/meeting",
            Some(&service),
            None,
        ),
    )
    .await;
    assert_error(&nothing, 404, "NOT_FOUND");
    stack.finish(0).await;
}

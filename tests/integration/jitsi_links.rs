//! Jitsi links (guarantee 2): a JWT per caller for exactly that room, moderator only for the
//! host, `exp` bounded by the meeting's end plus the grace period. Tokens are checked with an
//! independent decoder (jsonwebtoken's verify with the secret or public key), claim by claim.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};
use telemeet::App;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

async fn jitsi_app(stack: &Stack) -> App {
    stack
        .app_configured(
            manual_clock(),
            Settings::default(),
            &[("MEETING_PROVIDER", "jitsi")],
        )
        .await
        .expect("app")
}

async fn meeting(app: &App, stack: &Stack, appointment: &str) -> Value {
    let service = day_token(stack, "svc-1", "service", "clinic-1");
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9", "pat-2"], "startTime": "2030-01-01T10:00:00Z", "durationMinutes": 30 });
    let r = call(
        app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            &format!("/appointments/{appointment}/meeting"),
            Some(&service),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

async fn link(app: &App, stack: &Stack, meeting: &Value, user: &str, role: &str) -> String {
    let token = day_token(stack, user, role, "clinic-1");
    let id = meeting["meetingId"].as_str().expect("id");
    let r = call(
        app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}/link"), Some(&token), None),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let url = r.body["url"].as_str().expect("url").to_owned();
    stack.remember(&url);
    url
}

fn token_of(url: &str) -> &str {
    url.split_once("?jwt=").map(|(_, t)| t).expect("a jwt link")
}

/// The meeting ends 2030-01-01T10:30:00Z; links live one hour longer.
fn exp() -> i64 {
    chrono::DateTime::parse_from_rfc3339("2030-01-01T11:30:00Z")
        .expect("time")
        .timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_hosted_hs256_links_are_per_caller_room_bound_and_moderated_only_for_the_host() {
    let stack = in_process_stack().await;
    let app = jitsi_app(&stack).await;
    let a = meeting(&app, &stack, "appt-jitsi-a").await;
    let b = meeting(&app, &stack, "appt-jitsi-b").await;
    assert_eq!(a["provider"], "jitsi");
    let room_a = a["providerMeetingId"].as_str().expect("room").to_owned();
    let room_b = b["providerMeetingId"].as_str().expect("room").to_owned();
    assert_ne!(room_a, room_b);

    let verify = |url: &str, room: &str| -> Value {
        let prefix = format!("https://{}/{room}?jwt=", local_stack::JITSI_DOMAIN);
        assert!(url.starts_with(&prefix), "a link to exactly this room");
        assert_eq!(
            decode_header(token_of(url)).expect("header").alg,
            Algorithm::HS256
        );
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["jitsi"]);
        v.set_issuer(&["telemeet-local"]);
        decode::<Value>(
            token_of(url),
            &DecodingKey::from_secret(stack.jitsi_app_secret.as_bytes()),
            &v,
        )
        .expect("signed with the app secret")
        .claims
    };
    let host = verify(
        &link(&app, &stack, &a, "dr-7", "practitioner").await,
        &room_a,
    );
    let patient = verify(&link(&app, &stack, &a, "pat-9", "patient").await, &room_a);
    let other = verify(&link(&app, &stack, &a, "pat-2", "patient").await, &room_a);
    let in_b = verify(&link(&app, &stack, &b, "pat-9", "patient").await, &room_b);

    assert_eq!(host["iss"], "telemeet-local");
    assert_eq!(host["aud"], "jitsi");
    assert_eq!(host["sub"], local_stack::JITSI_DOMAIN);
    assert_eq!(host["room"], room_a.as_str(), "exactly the room, never *");
    assert_eq!(
        host["exp"],
        exp(),
        "the meeting's end plus the grace period"
    );
    // A link for a meeting years away does not open the room before 15 min ahead of it.
    let opens = chrono::DateTime::parse_from_rfc3339("2030-01-01T09:45:00Z").expect("time");
    assert_eq!(host["nbf"], opens.timestamp(), "the start minus the lead");
    assert_eq!(host["context"]["user"]["moderator"], "true");
    assert_eq!(host["context"]["user"]["id"], "dr-7");
    assert_eq!(patient["context"]["user"]["moderator"], "false");
    assert_eq!(patient["context"]["user"]["id"], "pat-9");
    for claims in [&host, &patient] {
        let user = claims["context"]["user"].as_object().expect("context.user");
        assert!(user.values().all(Value::is_string), "string fields only");
        assert!(!user.contains_key("email"), "no PHI");
    }
    assert_eq!(in_b["room"], room_b.as_str());
    assert_ne!(
        in_b["room"], patient["room"],
        "a token for room A does not name room B"
    );
    assert_ne!(patient, other, "each caller's token is their own");
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        0,
        "Jitsi needs no provider call"
    );

    // Reschedule and cancel work for Jitsi too (nothing to call at Jitsi).
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let id = a["meetingId"].as_str().expect("id");
    let patch = json!({ "durationMinutes": 45 });
    let r = call(
        &app,
        Function::ManageMeeting,
        lambda_request(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&service),
            Some(&patch),
        ),
    )
    .await;
    assert_eq!(r.body["durationMinutes"], 45);
    let later = verify(&link(&app, &stack, &a, "pat-9", "patient").await, &room_a);
    assert_eq!(later["exp"], exp() + 15 * 60, "exp follows the new end");
    let r = call(
        &app,
        Function::ManageMeeting,
        lambda_request("DELETE", &format!("/meetings/{id}"), Some(&service), None),
    )
    .await;
    assert_eq!(r.body["status"], "cancelled");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaas_rs256_links_carry_the_key_id_and_verify_with_the_public_key() {
    let stack = in_process_stack().await;
    let app_id = "vpaas-magic-cookie-0123456789abcdef";
    stack
        .put_secret(
            local_stack::JITSI_SECRET_ID,
            &json!({ "domain": "8x8.vc", "appId": app_id, "keyId": "kid1", "privateKeyPem": local_stack::DEV_RS256_PRIVATE }),
        )
        .await;
    let app = jitsi_app(&stack).await;
    let m = meeting(&app, &stack, "appt-jaas").await;
    let room = m["providerMeetingId"].as_str().expect("room").to_owned();
    let check = |url: &str| -> Value {
        assert!(url.starts_with(&format!("https://8x8.vc/{app_id}/{room}?jwt=")));
        let header = decode_header(token_of(url)).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(
            header.kid.as_deref(),
            Some(format!("{app_id}/kid1").as_str())
        );
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["jitsi"]);
        v.set_issuer(&["chat"]);
        let key = DecodingKey::from_rsa_pem(local_stack::DEV_RS256_PUBLIC.as_bytes())
            .expect("public key");
        decode::<Value>(token_of(url), &key, &v)
            .expect("verified with the public key")
            .claims
    };
    let host = check(&link(&app, &stack, &m, "dr-7", "practitioner").await);
    let patient = check(&link(&app, &stack, &m, "pat-9", "patient").await);
    assert_eq!(host["sub"], app_id);
    assert_eq!(host["room"], room.as_str());
    assert_eq!(host["exp"], exp());
    assert_eq!(
        host["context"]["user"]["moderator"], "true",
        "JaaS wants the string"
    );
    assert_eq!(patient["context"]["user"]["moderator"], "false");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_jitsi_meeting_is_archived_by_the_weekly_cleanup_without_provider_calls() {
    let stack = in_process_stack().await;
    let app = jitsi_app(&stack).await;
    let m = meeting(&app, &stack, "appt-jitsi-cleanup").await;
    let id = m["meetingId"].as_str().expect("id");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    for action in ["start", "end"] {
        let r = call(
            &app,
            Function::ManageMeeting,
            lambda_request(
                "POST",
                &format!("/meetings/{id}/{action}"),
                Some(&service),
                None,
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{action}: {:?}", r.body);
    }
    // The meeting was on 2030-01-01: the cleanup of 2030-01-13 finds it due.
    let summary = telemeet::cleanup::run(
        &app,
        &telemeet::cleanup::CleanupSettings::default(),
        &json!({ "time": "2030-01-13T02:00:00Z", "detail": {} }),
        app.service.clock.instant() + std::time::Duration::from_secs(30),
    )
    .await
    .expect("a summary");
    assert_eq!(
        (summary["archived"].as_u64(), summary["failed"].as_u64()),
        (Some(1), Some(0)),
        "{summary}"
    );
    let read = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}"), Some(&service), None),
    )
    .await;
    assert_eq!(read.body["status"], "archived");
    assert_eq!(
        stack.sandbox_count("DELETE /v2/meetings/{meetingId}").await,
        0,
        "Jitsi rooms need no provider call"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jitsi_link_opens_the_room_from_the_configured_lead_before_the_start_and_at_once_when_close()
 {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app_configured(
            clock.clone(),
            Settings::default(),
            &[
                ("MEETING_PROVIDER", "jitsi"),
                ("JITSI_JOIN_LEAD_SECONDS", "3600"),
            ],
        )
        .await
        .expect("app");
    let now = telemeet::clock::Clock::now(clock.as_ref());
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let nbf_for = |appointment: &'static str, start: chrono::DateTime<chrono::Utc>| {
        let (app, stack, service) = (&app, &stack, service.clone());
        async move {
            let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"], "startTime": start.to_rfc3339(), "durationMinutes": 30 });
            let req = lambda_request(
                "PUT",
                &format!("/appointments/{appointment}/meeting"),
                Some(&service),
                Some(&body),
            );
            let m = call(app, Function::CreateMeeting, req).await;
            assert_eq!(m.status, 201, "{:?}", m.body);
            let url = link(app, stack, &m.body, "pat-9", "patient").await;
            let mut v = Validation::new(Algorithm::HS256);
            v.set_audience(&["jitsi"]);
            let key = DecodingKey::from_secret(stack.jitsi_app_secret.as_bytes());
            let claims = decode::<Value>(token_of(&url), &key, &v)
                .expect("jwt")
                .claims;
            claims["nbf"].as_i64().expect("nbf")
        }
    };
    let next_week = now + chrono::Duration::days(7);
    assert_eq!(
        nbf_for("appt-lead-far", next_week).await,
        (next_week - chrono::Duration::hours(1)).timestamp(),
        "the configured hour ahead of the start"
    );
    // Asked for 20 minutes ahead with an hour's lead: valid from now (10 s for clock skew).
    let soon = now + chrono::Duration::minutes(20);
    let nbf = nbf_for("appt-lead-soon", soon).await;
    assert!(
        (now.timestamp() - 10..=now.timestamp()).contains(&nbf),
        "{nbf}"
    );
    stack.finish(0).await;
}

/// The self-hosted test key with `extra` fields in the Jitsi secret.
async fn self_hosted_with(stack: &Stack, extra: Value) {
    let mut secret = json!({ "domain": local_stack::JITSI_DOMAIN, "appId": "telemeet-local", "appSecret": stack.jitsi_app_secret });
    for (k, v) in extra.as_object().into_iter().flatten() {
        secret[k] = v.clone();
    }
    stack
        .put_secret(local_stack::JITSI_SECRET_ID, &secret)
        .await;
}

fn hs256_claims(stack: &Stack, url: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["jitsi"]);
    v.set_issuer(&["telemeet-local"]);
    let key = DecodingKey::from_secret(stack.jitsi_app_secret.as_bytes());
    decode::<Value>(token_of(url), &key, &v)
        .expect("signed with the app secret")
        .claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_is_the_lowercased_xmpp_domain_the_secret_names_not_the_public_host() {
    let stack = in_process_stack().await;
    // docker-jitsi-meet: the public host differs from XMPP_DOMAIN (default meet.jitsi).
    self_hosted_with(&stack, json!({ "subject": "Meet.Jitsi" })).await;
    let app = jitsi_app(&stack).await;
    let m = meeting(&app, &stack, "appt-jitsi-sub").await;
    let url = link(&app, &stack, &m, "dr-7", "practitioner").await;
    assert!(url.starts_with(&format!("https://{}/", local_stack::JITSI_DOMAIN)));
    assert_eq!(hs256_claims(&stack, &url)["sub"], "meet.jitsi");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_guest_domain_only_the_host_holds_a_token_and_patients_join_as_guests() {
    let stack = in_process_stack().await;
    self_hosted_with(&stack, json!({ "guestDomain": "guest.meet.jitsi" })).await;
    let app = jitsi_app(&stack).await;
    let m = meeting(&app, &stack, "appt-jitsi-guest").await;
    let room = m["providerMeetingId"].as_str().expect("room");
    let host = link(&app, &stack, &m, "dr-7", "practitioner").await;
    assert_eq!(
        hs256_claims(&stack, &host)["context"]["user"]["moderator"],
        "true"
    );
    let patient = link(&app, &stack, &m, "pat-9", "patient").await;
    assert_eq!(
        patient,
        format!("https://{}/{room}", local_stack::JITSI_DOMAIN),
        "the room alone: nothing the server could make an owner of"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jaas_key_id_copied_whole_from_the_console_signs_the_same_kid() {
    let stack = in_process_stack().await;
    let app_id = "vpaas-magic-cookie-0123456789abcdef";
    let kid = format!("{app_id}/4f4910-SAMPLE_APP");
    stack
        .put_secret(
            local_stack::JITSI_SECRET_ID,
            &json!({ "domain": "8x8.vc", "appId": app_id, "keyId": kid, "privateKeyPem": local_stack::DEV_RS256_PRIVATE }),
        )
        .await;
    let app = jitsi_app(&stack).await;
    let m = meeting(&app, &stack, "appt-jaas-kid").await;
    let url = link(&app, &stack, &m, "dr-7", "practitioner").await;
    let header = decode_header(token_of(&url)).expect("header");
    assert_eq!(
        header.kid.as_deref(),
        Some(kid.as_str()),
        "not prefixed twice"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meet_jit_si_is_refused_as_an_orgs_jitsi_domain() {
    let stack = in_process_stack().await;
    let app = jitsi_app(&stack).await;
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let body =
        json!({ "domain": "meet.jit.si", "appId": "clinic", "appSecret": stack.jitsi_app_secret });
    let req = lambda_request("PUT", "/org/providers/jitsi", Some(&service), Some(&body));
    let refused = call(&app, Function::OrgAdmin, req).await;
    assert_error(&refused, 400, "VALIDATION_FAILED");
    assert_eq!(error_field(&refused), "domain");
    stack.finish(0).await;
}

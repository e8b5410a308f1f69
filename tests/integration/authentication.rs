//! Callers are authenticated by JWT: HS256 or RS256 from the auth secret, issuer, audience
//! and expiry checked; everything else is 401 with the contract's body.

use base64::Engine;
use serde_json::{Value, json};
use telemeet_local::*;

fn claims(overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE,
        "sub": "svc-1", "role": "service", "org": "clinic-1", "iat": now, "exp": now + 600,
    });
    for (k, v) in overrides.as_object().expect("object") {
        if v.is_null() {
            c.as_object_mut().expect("object").remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn unsigned(claims: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(claims)
    )
}

#[tokio::test]
async fn valid_hs256_and_rs256_tokens_are_accepted() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let hs = stack.sign(Signer::Hs256, claims(json!({})));
    let rs = stack.sign(Signer::Rs256, claims(json!({})));
    assert_eq!(
        api.put_appointment(&hs, "appt-auth", &appointment_body())
            .await
            .status,
        201
    );
    assert_eq!(
        api.put_appointment(&rs, "appt-auth", &appointment_body())
            .await
            .status,
        200
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn missing_expired_unsigned_misaddressed_and_foreign_tokens_are_refused_with_401() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let now = chrono::Utc::now().timestamp();
    let bad: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty bearer", Some(String::new())),
        ("garbage", Some("not.a.jwt".into())),
        (
            "expired",
            Some(stack.sign(Signer::Hs256, claims(json!({ "exp": now - 3600 })))),
        ),
        ("alg none", Some(unsigned(&claims(json!({}))))),
        (
            "wrong audience",
            Some(stack.sign(Signer::Hs256, claims(json!({ "aud": "someone-else" })))),
        ),
        (
            "wrong issuer",
            Some(stack.sign(Signer::Hs256, claims(json!({ "iss": "evil" })))),
        ),
        (
            "wrong HS256 key",
            Some(stack.sign(Signer::WrongHs256, claims(json!({})))),
        ),
        (
            "wrong RS256 key",
            Some(stack.sign(Signer::WrongRs256, claims(json!({})))),
        ),
        (
            "HS256 keyed with the RS256 public key",
            Some(stack.sign(Signer::Hs256WithPublicKey, claims(json!({})))),
        ),
        (
            "no exp",
            Some(stack.sign(Signer::Hs256, claims(json!({ "exp": null })))),
        ),
        (
            "no org",
            Some(stack.sign(Signer::Hs256, claims(json!({ "org": null })))),
        ),
        (
            "unknown role",
            Some(stack.sign(Signer::Hs256, claims(json!({ "role": "superuser" })))),
        ),
        (
            "not yet valid",
            Some(stack.sign(Signer::Hs256, claims(json!({ "nbf": now + 3600 })))),
        ),
    ];
    for (why, token) in bad {
        for (method, path) in [
            ("GET", "/meetings/mtg_x"),
            ("PUT", "/appointments/appt-1/meeting"),
        ] {
            let body = (method == "PUT").then(|| appointment_body().to_string());
            let r = match &token {
                None => api.send(method, path, None, body).await,
                Some(t) if t.is_empty() => {
                    let http = reqwest::Client::new();
                    let res = http
                        .request(
                            reqwest::Method::from_bytes(method.as_bytes()).expect("m"),
                            format!("{}{path}", stack.gateway()),
                        )
                        .header("authorization", "Bearer ")
                        .send()
                        .await
                        .expect("answer");
                    Reply {
                        status: res.status().as_u16(),
                        headers: res.headers().clone(),
                        body: res.json().await.unwrap_or(Value::Null),
                    }
                }
                Some(t) => api.send(method, path, Some(t), body).await,
            };
            assert_error(&r, 401, "UNAUTHENTICATED");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{why}");
        }
    }
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        0,
        "nothing reached the provider"
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn patients_and_other_practitioners_may_not_provision_an_appointment() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let body = appointment_body(); // host dr-7
    let patient = stack.token("pat-9", "patient", "clinic-1");
    assert_error(
        &api.put_appointment(&patient, "appt-roles", &body).await,
        403,
        "FORBIDDEN",
    );
    let other = stack.token("dr-8", "practitioner", "clinic-1");
    assert_error(
        &api.put_appointment(&other, "appt-roles", &body).await,
        403,
        "FORBIDDEN",
    );
    let own = stack.token("dr-7", "practitioner", "clinic-1");
    assert_eq!(
        api.put_appointment(&own, "appt-roles", &body).await.status,
        201
    );
    // A practitioner who is only a participant may see the meeting but not provision it.
    let service = stack.token("svc-1", "service", "clinic-1");
    let mut team = body.clone();
    team["participantUserIds"] = json!(["pat-9", "dr-9"]);
    assert_eq!(
        api.put_appointment(&service, "appt-team", &team)
            .await
            .status,
        201
    );
    let colleague = stack.token("dr-9", "practitioner", "clinic-1");
    let mut as_host = body.clone();
    as_host["hostUserId"] = json!("dr-9");
    let r = api.put_appointment(&colleague, "appt-team", &as_host).await;
    assert_error(&r, 403, "FORBIDDEN");
    // The same appointment id in another org is another subject.
    let elsewhere = stack.token("svc-2", "service", "clinic-2");
    let r = api.put_appointment(&elsewhere, "appt-roles", &body).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["orgId"], "clinic-2");
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 3);
    stack.finish(0).await;
}

/// `GET /meetings/{id}/link` with API Gateway authorizer claims.
async fn link_as(app: &telemeet::App, id: &str, claims: &Value) -> Reply {
    let req = lambda_request_with_claims("GET", &format!("/meetings/{id}/link"), claims, None);
    call(app, telemeet::http::router::Function::GetMeetingLink, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_authorizer_mode_the_api_gateway_authorizers_claims_are_trusted_and_only_they() {
    use telemeet::http::router::Function;
    let stack = in_process_stack().await;
    let settings = telemeet::service::Settings::default;
    // AUTH_MODE=authorizer: no auth secret needed; the claims API Gateway verified count.
    let trusting = stack
        .app_configured(
            manual_clock(),
            settings(),
            &[("AUTH_MODE", "authorizer"), ("AUTH_SECRET_ID", "")],
        )
        .await
        .expect("app");
    let practitioner = json!({ "sub": "dr-7", "role": "practitioner", "org": "clinic-1", "iss": "https://idp.example", "aud": "telemeet" });
    let put = |claims: &Value| {
        lambda_request_with_claims(
            "PUT",
            "/appointments/appt-authz/meeting",
            claims,
            Some(&appointment_body()),
        )
    };
    let created = call(&trusting, Function::CreateMeeting, put(&practitioner)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["initiatedBy"], "dr-7");
    // A user-writable Cognito attribute is not read in place of the configured claim: a
    // patient who wrote `custom:role=service` is refused, not promoted.
    let patient = json!({ "sub": "pat-9", "custom:role": "service", "custom:org": "clinic-1" });
    let id = created.body["meetingId"].as_str().expect("id");
    assert_error(
        &link_as(&trusting, id, &patient).await,
        401,
        "UNAUTHENTICATED",
    );
    // Configured to read claims a pre-token-generation trigger sets, only those count.
    let trigger_claims = stack
        .app_configured(
            manual_clock(),
            settings(),
            &[
                ("AUTH_MODE", "authorizer"),
                ("AUTH_SECRET_ID", ""),
                ("AUTHORIZER_ROLE_CLAIM", "telemeet_role"),
                ("AUTHORIZER_ORG_CLAIM", "telemeet_org"),
            ],
        )
        .await
        .expect("app");
    let patient = json!({ "sub": "pat-9", "telemeet_role": "patient", "telemeet_org": "clinic-1", "role": "service" });
    let link = link_as(&trigger_claims, id, &patient).await;
    assert_eq!(link.body["role"], "participant", "{:?}", link.body);
    // A custom attribute as the role claim is a configuration error unless allowed.
    let refused = stack
        .app_configured(
            manual_clock(),
            settings(),
            &[
                ("AUTH_MODE", "authorizer"),
                ("AUTH_SECRET_ID", ""),
                ("AUTHORIZER_ROLE_CLAIM", "custom:role"),
            ],
        )
        .await;
    assert!(
        refused.is_err(),
        "custom:* claims need AUTHORIZER_ALLOW_CUSTOM_CLAIMS=true"
    );
    // No authorizer claims (a route without the authorizer): 401, even with a valid token.
    let bare = call(
        &trusting,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-authz/meeting",
            Some(&stack.token("svc-1", "service", "clinic-1")),
            Some(&appointment_body()),
        ),
    )
    .await;
    assert_error(&bare, 401, "UNAUTHENTICATED");
    let incomplete = call(
        &trusting,
        Function::CreateMeeting,
        put(&json!({ "sub": "dr-7", "role": "practitioner" })),
    )
    .await;
    assert_error(&incomplete, 401, "UNAUTHENTICATED");

    // The default mode verifies tokens itself and ignores such claims.
    let verifying = stack.app(manual_clock(), settings()).await.expect("app");
    let forged = call(&verifying, Function::CreateMeeting, put(&practitioner)).await;
    assert_error(&forged, 401, "UNAUTHENTICATED");
    stack.finish(0).await;
}

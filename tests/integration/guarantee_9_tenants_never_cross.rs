//! Guarantee 9, tenants never cross: an org's provider connection, secrets, host directory
//! and webhook serve that org alone; connections are checked with the provider before they
//! are stored, and their secrets never reach the table, an answer or a log line.

use serde_json::{Value, json};
use telemeet::App;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

async fn org_call(app: &App, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
    call(
        app,
        Function::OrgAdmin,
        lambda_request(method, path, Some(token), body),
    )
    .await
}

async fn put(app: &App, token: &str, appointment: &str, body: &Value) -> Reply {
    let req = lambda_request(
        "PUT",
        &format!("/appointments/{appointment}/meeting"),
        Some(token),
        Some(body),
    );
    call(app, Function::CreateMeeting, req).await
}

fn body_for(host: &str) -> Value {
    let mut b = appointment_body();
    b["hostUserId"] = json!(host);
    b
}

/// Every item of the table, as text (moto's table is small: a Scan in a test is fine).
async fn table_text(stack: &Stack) -> String {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.aws_config().await);
    let out = ddb
        .scan()
        .table_name(local_stack::TABLE_NAME)
        .send()
        .await
        .expect("scan");
    format!("{:?}", out.items())
}

/// The request targets of every meeting create the Zoom sandbox received.
async fn create_targets(stack: &Stack) -> Vec<String> {
    let received = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/received", None)
        .await;
    received["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["operation"] == CREATE_OP)
        .filter_map(|r| r["target"].as_str().map(str::to_owned))
        .collect()
}

async fn secret_exists(stack: &Stack, name: &str) -> bool {
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws_config().await);
    sm.get_secret_value().secret_id(name).send().await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_a_connection_is_verified_before_it_is_stored_and_never_echoes_a_secret() {
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    let admin = stack.token("adm-2", "admin", "clinic-2");
    let staff = stack.token("st-2", "staff", "clinic-2");
    let secret_name = format!("{}clinic-2/zoom", local_stack::ORG_SECRETS_PREFIX);
    let good = stack.zoom_connection(&json!({ "defaultUser": "me", "hostDailyBudget": 50 }));
    let token = good["webhookSecretToken"]
        .as_str()
        .expect("token")
        .to_owned();

    let r = org_call(&app, "PUT", "/org/providers/zoom", &staff, Some(&good)).await;
    assert_error(&r, 403, "FORBIDDEN");

    let mut wrong = good.clone();
    wrong["clientSecret"] = json!("not-the-client-secret");
    let grants = stack.sandbox_count(TOKEN_OP).await;
    let r = org_call(&app, "PUT", "/org/providers/zoom", &admin, Some(&wrong)).await;
    assert_error(&r, 502, "PROVIDER_REJECTED");
    assert_eq!(
        stack.sandbox_count(TOKEN_OP).await,
        grants + 1,
        "one grant checks them"
    );
    assert!(
        !secret_exists(&stack, &secret_name).await,
        "refused: nothing stored"
    );
    let listed = org_call(&app, "GET", "/org/providers", &admin, None).await;
    assert_eq!(listed.body, json!({ "providers": [] }));

    let r = org_call(&app, "PUT", "/org/providers/zoom", &admin, Some(&good)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["provider"], "zoom");
    assert_eq!(r.body["configured"], true);
    assert_eq!(r.body["accountId"], good["accountId"]);
    assert_eq!(r.body["hostDailyBudget"], 50);
    assert!(r.body["verifiedAt"].is_string());
    assert!(secret_exists(&stack, &secret_name).await);
    let listed = org_call(&app, "GET", "/org/providers", &admin, None).await;
    assert_eq!(listed.body["providers"][0], r.body);
    let client_secret = good["clientSecret"].as_str().expect("secret");
    for (what, text) in [
        ("the answer", r.body.to_string()),
        ("the list", listed.body.to_string()),
        ("the table", table_text(&stack).await),
    ] {
        assert!(
            !text.contains(client_secret),
            "{what} holds the client secret"
        );
        assert!(
            !text.contains(&token),
            "{what} holds the webhook secret token"
        );
    }
    // Another org sees none of it.
    let other = stack.token("adm-3", "admin", "clinic-3");
    let theirs = org_call(&app, "GET", "/org/providers", &other, None).await;
    assert_eq!(theirs.body, json!({ "providers": [] }));

    let gone = org_call(&app, "DELETE", "/org/providers/zoom", &admin, None).await;
    assert_eq!(
        gone.body,
        json!({ "provider": "zoom", "configured": false })
    );
    assert!(!secret_exists(&stack, &secret_name).await);
    let again = org_call(&app, "DELETE", "/org/providers/zoom", &admin, None).await;
    assert_error(&again, 404, "NOT_FOUND");
    let bad = org_call(&app, "PUT", "/org/providers/skype", &admin, Some(&good)).await;
    assert_error(&bad, 400, "VALIDATION_FAILED");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_meetings_run_under_the_hosts_own_provider_user_and_unmapped_hosts_are_422() {
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    let admin = stack.token("adm-2", "admin", "clinic-2");
    let service = stack.token("svc-2", "service", "clinic-2");
    // An org connection without a default user: every host must be mapped.
    let r = org_call(
        &app,
        "PUT",
        "/org/providers/zoom",
        &admin,
        Some(&stack.zoom_connection(&json!({}))),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let (grants, creates) = (
        stack.sandbox_count(TOKEN_OP).await,
        stack.sandbox_count(CREATE_OP).await,
    );
    let unmapped = put(&app, &service, "appt-unmapped", &body_for("dr-7")).await;
    assert_error(&unmapped, 422, "HOST_NOT_MAPPED");
    assert_eq!(unmapped.body["error"]["details"]["provider"], "zoom");
    assert_eq!(
        (
            stack.sandbox_count(TOKEN_OP).await,
            stack.sandbox_count(CREATE_OP).await
        ),
        (grants, creates),
        "422 before any provider call"
    );

    stack.zoom_user("dr7@clinic2.example").await;
    let mapping = json!({ "zoomUser": "dr7@clinic2.example" });
    let r = org_call(&app, "PUT", "/org/hosts/dr-7", &admin, Some(&mapping)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["zoomUser"], "dr7@clinic2.example");
    let read = org_call(&app, "GET", "/org/hosts/dr-7", &admin, None).await;
    assert_eq!(read.body, r.body);
    let list = org_call(&app, "GET", "/org/hosts", &admin, None).await;
    assert_eq!(list.body["hosts"], json!([r.body]));
    let staff = stack.token("st-2", "staff", "clinic-2");
    assert_error(
        &org_call(&app, "GET", "/org/hosts", &staff, None).await,
        403,
        "FORBIDDEN",
    );
    let elsewhere = stack.token("adm-3", "admin", "clinic-3");
    let none = org_call(&app, "GET", "/org/hosts/dr-7", &elsewhere, None).await;
    assert_error(&none, 404, "NOT_FOUND");

    let mapped = put(&app, &service, "appt-mapped", &body_for("dr-7")).await;
    assert_eq!(mapped.status, 201, "{:?}", mapped.body);
    let created_at = create_targets(&stack).await;
    assert_eq!(created_at.len(), 1);
    assert!(
        created_at[0].starts_with("/v2/users/dr7@clinic2.example/meetings")
            || created_at[0].starts_with("/v2/users/dr7%40clinic2.example/meetings"),
        "created under the host's own Zoom user: {created_at:?}"
    );

    // A patient is never a host, whatever the body says.
    let patient = stack.token("pat-9", "patient", "clinic-2");
    let req = lambda_request(
        "PUT",
        "/conversations/conv-self/meeting",
        Some(&patient),
        Some(&json!({ "hostUserId": "pat-9", "participantUserIds": ["dr-7"] })),
    );
    assert_error(
        &call(&app, Function::CreateMeeting, req).await,
        403,
        "FORBIDDEN",
    );

    let removed = org_call(&app, "DELETE", "/org/hosts/dr-7", &admin, None).await;
    assert_eq!(removed.body["userId"], "dr-7");
    let after = put(&app, &service, "appt-unmapped-again", &body_for("dr-7")).await;
    assert_error(&after, 422, "HOST_NOT_MAPPED");
    // A reuse never depends on today's mapping: the existing meeting is answered.
    let reused = put(&app, &service, "appt-mapped", &body_for("dr-7")).await;
    assert_eq!(reused.status, 200, "{:?}", reused.body);
    assert_eq!(reused.body["meetingId"], mapped.body["meetingId"]);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_org_settings_override_the_deployments_defaults_for_that_org_only() {
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    let admin = stack.token("adm-2", "admin", "clinic-2");
    let defaults = org_call(&app, "GET", "/org/settings", &admin, None).await;
    assert_eq!(
        defaults.body,
        json!({ "orgId": "clinic-2", "provider": "zoom", "fallbackProvider": null,
                "conversationReuseSeconds": 3600, "noShowGraceMinutes": 10, "updatedAt": null })
    );
    let wanted =
        json!({ "provider": "jitsi", "fallbackProvider": "zoom", "conversationReuseSeconds": 600 });
    let set = org_call(&app, "PUT", "/org/settings", &admin, Some(&wanted)).await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["provider"], "jitsi");
    assert_eq!(set.body["conversationReuseSeconds"], 600);
    assert_eq!(
        org_call(&app, "GET", "/org/settings", &admin, None)
            .await
            .body,
        set.body
    );

    let service = stack.token("svc-2", "service", "clinic-2");
    let made = put(&app, &service, "appt-jitsi", &appointment_body()).await;
    assert_eq!(made.body["provider"], "jitsi", "{:?}", made.body);
    let conversation = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] });
    let req = lambda_request(
        "PUT",
        "/conversations/conv-org/meeting",
        Some(&service),
        Some(&conversation),
    );
    let room = call(&app, Function::CreateMeeting, req).await;
    assert_eq!(room.status, 201, "{:?}", room.body);
    let (created, expires) = (&room.body["createdAt"], &room.body["expiresAt"]);
    let seconds = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time"))
            .expect("time")
            .timestamp()
    };
    assert_eq!(
        seconds(expires) - seconds(created),
        600,
        "the org's reuse window"
    );

    // Another org keeps the deployment's defaults.
    let other = stack.token("svc-3", "service", "clinic-3");
    let theirs = put(&app, &other, "appt-zoom", &appointment_body()).await;
    assert_eq!(theirs.body["provider"], "zoom");
    let bad = org_call(
        &app,
        "PUT",
        "/org/settings",
        &admin,
        Some(&json!({ "provider": "zoom", "conversationReuseSeconds": 5 })),
    )
    .await;
    assert_error(&bad, 400, "VALIDATION_FAILED");
    stack.finish(0).await;
}

/// Connects `org` to the sandbox's Zoom account with its own webhook secret token, default
/// user `me`; answers the token.
async fn connect_zoom(stack: &Stack, app: &App, org: &str) -> String {
    let admin = stack.token("adm", "admin", org);
    let body = stack.zoom_connection(&json!({ "defaultUser": "me" }));
    let r = org_call(app, "PUT", "/org/providers/zoom", &admin, Some(&body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    body["webhookSecretToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

fn started(zoom_id: &str, ts_ms: i64) -> String {
    json!({
        "event": "meeting.started", "event_ts": ts_ms,
        "payload": { "account_id": "acc", "object": { "id": zoom_id.parse::<i64>().unwrap_or(0),
            "uuid": "u-1", "host_id": "h", "topic": "Video consultation", "type": 2,
            "start_time": "2026-12-02T10:00:00Z", "duration": 30, "timezone": "UTC" } }
    })
    .to_string()
}

async fn deliver_signed(app: &App, path: &str, secret: &str, body: &str) -> (u16, Value) {
    let ts = chrono::Utc::now().timestamp();
    let headers = [
        ("x-zm-request-timestamp", ts.to_string()),
        ("x-zm-signature", sign(secret, ts, body.as_bytes())),
    ];
    deliver(app, delivery_to(path, &headers, body, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_an_orgs_webhook_is_verified_with_its_own_token_and_changes_only_its_meetings()
{
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    let token_a = connect_zoom(&stack, &app, "clinic-a").await;
    let token_b = connect_zoom(&stack, &app, "clinic-b").await;
    let service_b = stack.token("svc-b", "service", "clinic-b");
    let m = put(&app, &service_b, "appt-b", &appointment_body()).await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let zoom_id = m.body["providerMeetingId"].as_str().expect("id").to_owned();
    let id = m.body["meetingId"].as_str().expect("id").to_owned();
    let status = || async {
        let req = lambda_request("GET", &format!("/meetings/{id}"), Some(&service_b), None);
        call(&app, Function::GetMeetingLink, req).await.body["status"].clone()
    };
    let now_ms = chrono::Utc::now().timestamp_millis();

    // B's token at A's door, the deployment's token at B's door, B's at the deployment's.
    for (path, secret) in [
        ("/webhooks/zoom/clinic-a", token_b.as_str()),
        ("/webhooks/zoom/clinic-b", stack.webhook_secret.as_str()),
        ("/webhooks/zoom", token_b.as_str()),
        ("/webhooks/zoom/clinic-none", token_b.as_str()),
    ] {
        let (code, _) = deliver_signed(&app, path, secret, &started(&zoom_id, now_ms)).await;
        assert_eq!(code, 401, "{path}");
    }
    assert_eq!(status().await, "scheduled", "nothing written");

    // A correctly signed event of org A naming B's meeting: acknowledged, ignored.
    let (code, body) = deliver_signed(
        &app,
        "/webhooks/zoom/clinic-a",
        &token_a,
        &started(&zoom_id, now_ms),
    )
    .await;
    assert_eq!((code, body["status"].clone()), (200, json!("not-ours")));
    // The deployment's own app speaks for the deployment's account only.
    let (code, body) = deliver_signed(
        &app,
        "/webhooks/zoom",
        &stack.webhook_secret,
        &started(&zoom_id, now_ms + 1),
    )
    .await;
    assert_eq!((code, body["status"].clone()), (200, json!("not-ours")));
    assert_eq!(status().await, "scheduled");

    let (code, body) = deliver_signed(
        &app,
        "/webhooks/zoom/clinic-b",
        &token_b,
        &started(&zoom_id, now_ms + 2),
    )
    .await;
    assert_eq!((code, body["status"].clone()), (200, json!("applied")));
    assert_eq!(status().await, "started");
    stack.finish(0).await;
}

/// The Zoom login a host link is: the sandbox tells whose `zak` it carries.
async fn whose(stack: &Stack, url: &Value) -> Value {
    stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/whose-link",
            Some(json!({ "url": url })),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_two_orgs_with_their_own_zoom_accounts_never_share_a_token_or_a_host_login() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let mut accounts = Vec::new();
    for (org, email) in [("clinic-x", "dr1@x.example"), ("clinic-y", "dr1@y.example")] {
        let body = stack.zoom_account(&[email]).await;
        let admin = day_token(&stack, "adm", "admin", org);
        let r = org_call(&app, "PUT", "/org/providers/zoom", &admin, Some(&body)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        // The same telemeet user id in both orgs, a different Zoom user in each.
        let r = org_call(
            &app,
            "PUT",
            "/org/hosts/dr-1",
            &admin,
            Some(&json!({ "zoomUser": email })),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        accounts.push((org, email, body["accountId"].clone()));
    }
    let mut meetings = Vec::new();
    for (org, email, account) in &accounts {
        let service = day_token(&stack, "svc", "service", org);
        let m = put(&app, &service, "appt-same-id", &body_for("dr-1")).await;
        assert_eq!(m.status, 201, "{org}: {:?}", m.body);
        let host = day_token(&stack, "dr-1", "practitioner", org);
        let id = m.body["meetingId"].as_str().expect("id").to_owned();
        let link = |t: &str| {
            lambda_request(
                "GET",
                &format!("/meetings/{id}/link?role=host"),
                Some(t),
                None,
            )
        };
        let first = call(&app, Function::GetMeetingLink, link(&host)).await;
        let login = whose(&stack, &first.body["url"]).await;
        assert_eq!(
            (&login["accountId"], login["email"].as_str()),
            (account, Some(*email)),
            "{org}"
        );
        meetings.push((org, id, host, account.clone()));
    }
    // Stale start URLs are refreshed from Zoom, each through its own org's account.
    clock.advance(chrono::Duration::minutes(91));
    for (org, id, host, account) in &meetings {
        let req = lambda_request(
            "GET",
            &format!("/meetings/{id}/link?role=host"),
            Some(host),
            None,
        );
        let fresh = call(&app, Function::GetMeetingLink, req).await;
        assert_eq!(fresh.status, 200, "{org}: {:?}", fresh.body);
        assert_eq!(
            &whose(&stack, &fresh.body["url"]).await["accountId"],
            account,
            "{org}"
        );
    }
    // Every API request carried the token of the account it acted in: the sandbox answers
    // another account's meeting with 3001, and none of those was seen.
    let calls = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/calls", None)
        .await;
    let requests = calls["requests"].as_array().expect("requests");
    for (_, _, _, account) in &meetings {
        let of = |op: &str| {
            requests
                .iter()
                .filter(|r| r["operation"] == op && &r["accountId"] == account)
                .count()
        };
        assert_eq!(
            (of(CREATE_OP), of(GET_OP)),
            (1, 1),
            "{account}: one create, one refresh"
        );
    }
    assert!(
        requests
            .iter()
            .all(|r| r["status"].as_u64().is_some_and(|s| s < 400)),
        "no refusal: {requests:?}"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_zooms_unknown_user_is_422_never_meeting_not_found() {
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    let admin = stack.token("adm-2", "admin", "clinic-2");
    let service = stack.token("svc-2", "service", "clinic-2");
    let r = org_call(
        &app,
        "PUT",
        "/org/providers/zoom",
        &admin,
        Some(&stack.zoom_connection(&json!({}))),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Mapped to a Zoom user the account does not have: Zoom answers 404 code 1001.
    let mapping = json!({ "zoomUser": "left-the-clinic@clinic2.example" });
    org_call(&app, "PUT", "/org/hosts/dr-7", &admin, Some(&mapping)).await;
    let creates = stack.sandbox_count(CREATE_OP).await;
    let r = put(&app, &service, "appt-gone-user", &body_for("dr-7")).await;
    assert_error(&r, 422, "HOST_NOT_MAPPED");
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        creates + 1,
        "one call, no retry"
    );
    // Nothing half-made: once mapped right, the same PUT creates the meeting.
    stack.zoom_user("dr7@clinic2.example").await;
    org_call(
        &app,
        "PUT",
        "/org/hosts/dr-7",
        &admin,
        Some(&json!({ "zoomUser": "dr7@clinic2.example" })),
    )
    .await;
    let r = put(&app, &service, "appt-gone-user", &body_for("dr-7")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_an_orgs_own_zoho_organisation_hosts_its_sessions_under_the_mapped_presenter() {
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    let (zsoid, client, secret, refresh) = (
        "80055501",
        "zoho-client-9",
        "zoho-secret-of-clinic-9",
        "1000.refresh.clinic9",
    );
    for s in [secret, refresh] {
        stack.remember(s);
    }
    let org = json!({ "zsoid": zsoid, "clientId": client, "clientSecret": secret,
                      "refreshToken": refresh, "presenters": ["9001", "9002"] });
    let made = stack
        .zoho(reqwest::Method::POST, "/__sandbox/orgs", Some(org))
        .await;
    assert_eq!(made["zsoid"].to_string().trim_matches('"'), zsoid, "{made}");
    let admin = stack.token("adm-9", "admin", "clinic-9");
    let mut body = json!({ "clientId": client, "clientSecret": secret, "refreshToken": "1000.wrong",
                           "dataCenter": "com", "zsoid": zsoid });
    let r = org_call(&app, "PUT", "/org/providers/zoho", &admin, Some(&body)).await;
    assert_error(&r, 502, "PROVIDER_REJECTED");
    body["refreshToken"] = json!(refresh);
    let r = org_call(&app, "PUT", "/org/providers/zoho", &admin, Some(&body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["zsoid"].clone(), r.body["defaultPresenter"].clone()),
        (json!(zsoid), Value::Null)
    );
    assert!(!r.body.to_string().contains(secret) && !r.body.to_string().contains(refresh));

    let service = stack.token("svc-9", "service", "clinic-9");
    let mut zoho = body_for("dr-9");
    zoho["provider"] = json!("zoho");
    let unmapped = put(&app, &service, "appt-zoho-unmapped", &zoho).await;
    assert_error(&unmapped, 422, "HOST_NOT_MAPPED");
    org_call(
        &app,
        "PUT",
        "/org/hosts/dr-9",
        &admin,
        Some(&json!({ "zohoPresenter": "9002" })),
    )
    .await;
    let m = put(&app, &service, "appt-zoho", &zoho).await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let sessions = stack
        .zoho(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    let ours: Vec<&Value> = sessions["meetings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["meetingKey"].to_string().trim_matches('"')
                == m.body["providerMeetingId"].as_str().unwrap_or("?")
        })
        .collect();
    assert_eq!(ours.len(), 1, "{sessions}");
    assert_eq!(
        ours[0]["presenter"].to_string().trim_matches('"'),
        "9002",
        "the mapped presenter"
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn guarantee_9_an_orgs_own_zoom_app_posts_signed_events_to_its_own_path_through_the_gateway()
{
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-2", "service", "clinic-2");
    let connection = stack.zoom_account(&["dr7@clinic2.example"]).await;
    let r = api
        .send(
            "PUT",
            "/org/providers/zoom",
            Some(&service),
            Some(connection.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mapping = json!({ "zoomUser": "dr7@clinic2.example" });
    let r = api
        .send(
            "PUT",
            "/org/hosts/dr-7",
            Some(&service),
            Some(mapping.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = api
        .put_appointment(&service, "appt-own-app", &appointment_body())
        .await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let send = |path: &str| {
        json!({ "event": "meeting.started", "meetingId": m.body["providerMeetingId"],
                "accountId": connection["accountId"],
                "target": format!("{}{path}", stack.gateway()) })
    };
    // At the deployment's door the org's app signs with a token that is not the deployment's.
    let wrong = stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/webhooks/send",
            Some(send("/webhooks/zoom")),
        )
        .await;
    assert_eq!(wrong["status"], 401, "{wrong}");
    let right = stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/webhooks/send",
            Some(send("/webhooks/zoom/clinic-2")),
        )
        .await;
    assert_eq!(
        (right["status"].clone(), right["body"]["status"].clone()),
        (json!(200), json!("applied")),
        "{right}"
    );
    let id = m.body["meetingId"].as_str().expect("id");
    assert_eq!(
        api.get(&service, &format!("/meetings/{id}")).await.body["status"],
        "started"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_in_the_deployments_shared_account_no_org_can_host_as_a_user_it_names() {
    let stack = in_process_stack().await;
    let app = stack
        .app(manual_clock(), Settings::default())
        .await
        .expect("app");
    // clinic-5 has no connection of its own: it runs in the deployment's account, where a
    // user of another clinic exists. Its mapping must not make its host that user.
    stack.zoom_user("dr.other@clinic6.example").await;
    let admin = stack.token("adm-5", "admin", "clinic-5");
    let mapping = json!({ "zoomUser": "dr.other@clinic6.example" });
    assert_eq!(
        org_call(&app, "PUT", "/org/hosts/dr-7", &admin, Some(&mapping))
            .await
            .status,
        200
    );
    let service = stack.token("svc-5", "service", "clinic-5");
    let m = put(&app, &service, "appt-shared", &body_for("dr-7")).await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let targets = create_targets(&stack).await;
    assert_eq!(targets.len(), 1);
    assert!(
        targets[0].starts_with("/v2/users/me/meetings"),
        "the account's default user: {targets:?}"
    );
    let host = stack.token("dr-7", "practitioner", "clinic-5");
    let id = m.body["meetingId"].as_str().expect("id");
    let req = lambda_request(
        "GET",
        &format!("/meetings/{id}/link?role=host"),
        Some(&host),
        None,
    );
    let link = call(&app, Function::GetMeetingLink, req).await;
    let login = whose(&stack, &link.body["url"]).await;
    assert_ne!(login["email"], "dr.other@clinic6.example", "{login}");
    stack.finish(0).await;
}

/// A KMS key at moto (raw JSON protocol: the tests link no KMS client); answers its id.
async fn kms_key(stack: &Stack) -> String {
    let made: Value = reqwest::Client::new()
        .post(&stack.moto_url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "TrentService.CreateKey")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("{}")
        .send()
        .await
        .expect("moto answers")
        .json()
        .await
        .expect("json");
    made["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap_or_else(|| panic!("a key: {made}"))
        .to_owned()
}

async fn secret_key_id(stack: &Stack, name: &str) -> Option<String> {
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws_config().await);
    let described = sm.describe_secret().secret_id(name).send().await;
    described
        .expect("described")
        .kms_key_id()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_an_orgs_secret_is_encrypted_with_the_stacks_kms_key_and_follows_a_new_one() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let name = format!("{}clinic-k/zoom", local_stack::ORG_SECRETS_PREFIX);
    let admin = day_token(&stack, "adm", "admin", "clinic-k");
    let connection = stack.zoom_connection(&json!({ "defaultUser": "me" }));
    for _ in 0..2 {
        // A first connection, then the same org again after the stack's key changed.
        let key = kms_key(&stack).await;
        let app = stack
            .app_configured(
                clock.clone(),
                Settings::default(),
                &[("ORG_SECRETS_KMS_KEY_ID", &key)],
            )
            .await
            .expect("app");
        let r = org_call(
            &app,
            "PUT",
            "/org/providers/zoom",
            &admin,
            Some(&connection),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let stored = secret_key_id(&stack, &name).await.unwrap_or_default();
        assert!(stored.ends_with(&key), "{stored} is not the key {key}");
        // The encrypted connection serves its org.
        let service = day_token(&stack, "svc", "service", "clinic-k");
        let m = put(&app, &service, &format!("appt-{key}"), &body_for("dr-1")).await;
        assert_eq!(m.status, 201, "{:?}", m.body);
    }
    stack.finish(0).await;
}

//! Guarantee 7: expiry is the app's, not TTL's. DynamoDB's TTL deletes late (and moto never
//! does): anything past its expiry is treated as absent by the code, by the injected clock.
//! TTL attributes are Numbers in epoch seconds. (A conversation meeting past its window
//! reading `expired` is proven in `conversations`; a claim's lease, in guarantee 1.)

use serde_json::json;
use telemeet::clock::Clock;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedupe_mark_past_its_expiry_counts_as_absent_while_the_table_still_holds_it() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let created = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-ttl/meeting",
            Some(&service),
            Some(&appointment_body()),
        ),
    )
    .await;
    assert_eq!(created.status, 201);
    let zoom_id: i64 = created.body["providerMeetingId"]
        .as_str()
        .expect("id")
        .parse()
        .expect("i64");
    let body = json!({ "event": "meeting.participant_joined", "event_ts": 1_700_000_000_000_i64, "payload": { "account_id": "a", "object": { "id": zoom_id, "uuid": "u-ttl", "host_id": "h", "participant": { "id": "p-1" } } } }).to_string();
    let deliver_now = || {
        let ts = clock.now().timestamp();
        delivery(
            &[
                ("x-zm-request-timestamp", ts.to_string()),
                (
                    "x-zm-signature",
                    sign(&stack.webhook_secret, ts, body.as_bytes()),
                ),
            ],
            &body,
            false,
        )
    };
    assert_eq!(deliver(&app, deliver_now()).await.1["status"], "applied");
    assert_eq!(deliver(&app, deliver_now()).await.1["status"], "duplicate");
    // Three days on the mark has expired; moto has not removed it (TTL never runs there).
    clock.advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
    let marks = table_items(&stack, "WHK#").await;
    assert_eq!(marks.len(), 1, "the mark is still in the table");
    assert_eq!(
        deliver(&app, deliver_now()).await.1["status"],
        "applied",
        "an expired mark is absent"
    );
    let id = created.body["meetingId"].as_str().expect("id");
    // A caller token valid at the clock's new time.
    let now = clock.now().timestamp();
    let later = stack.sign(
        Signer::Hs256,
        json!({ "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE, "sub": "svc-1", "role": "service", "org": "clinic-1", "iat": now, "exp": now + 3600 }),
    );
    let read = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}"), Some(&later), None),
    )
    .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["attendance"]["joins"], 2);
    stack.finish(0).await;
}

/// Every item whose `pk` starts with `prefix`, read straight from the (local) table.
async fn table_items(
    stack: &Stack,
    prefix: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    // A test's own look at moto: the service itself never scans.
    let client = aws_sdk_dynamodb::Client::new(&stack.aws_config().await);
    let out = client
        .scan()
        .table_name(local_stack::TABLE_NAME)
        .send()
        .await
        .expect("Scan");
    out.items
        .unwrap_or_default()
        .into_iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|pk| pk.starts_with(prefix))
        })
        .collect()
}

#[tokio::test]
async fn every_ttl_the_code_writes_is_a_number_of_epoch_seconds() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let now = chrono::Utc::now();
    // A released claim (a create Zoom clearly refused), a webhook mark, a shared Zoho token
    // and an archived meeting: each item that carries a TTL.
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "rate_limit", "retryAfter": "120" }))
        .await;
    assert_eq!(
        api.put_appointment(&service, "appt-released", &appointment_body())
            .await
            .status,
        429
    );
    let mut old = appointment_body();
    old["startTime"] = json!(
        (now - chrono::Duration::days(30))
            .format("%Y-%m-%dT10:00:00Z")
            .to_string()
    );
    let due = api.put_appointment(&service, "appt-old", &old).await;
    assert_eq!(due.status, 201, "{:?}", due.body);
    let sent = stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/webhooks/send",
            Some(json!({ "event": "meeting.started", "meetingId": due.body["providerMeetingId"], "target": format!("{}/webhooks/zoom", stack.gateway()) })),
        )
        .await;
    assert_eq!(sent["body"]["status"], "applied", "{sent}");
    let mut zoho = appointment_body();
    zoho["provider"] = json!("zoho");
    assert_eq!(
        api.put_appointment(&service, "appt-zoho", &zoho)
            .await
            .status,
        201
    );
    let cleanup = reqwest::Client::new()
        .post(format!("{}/local/events/cleanup", stack.gateway()))
        .json(&json!({ "time": now.to_rfc3339(), "detail": {} }))
        .send()
        .await
        .expect("cleanup");
    assert_eq!(cleanup.status().as_u16(), 200);

    let (lo, hi) = (
        (now - chrono::Duration::days(1)).timestamp(),
        (now + chrono::Duration::days(800)).timestamp(),
    );
    let mut kinds = std::collections::BTreeSet::new();
    for item in table_items(&stack, "").await {
        let Some(ttl) = item.get(telemeet::store::keys::TTL_ATTRIBUTE) else {
            continue;
        };
        let pk = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let seconds: i64 = ttl
            .as_n()
            .expect("a Number")
            .parse()
            .expect("whole seconds");
        assert!(
            (lo..hi).contains(&seconds),
            "{pk}: {seconds} is not epoch seconds of these days"
        );
        kinds.insert(pk.split('#').next().unwrap_or_default().to_owned());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["BUDGET", "MTG", "SUBJ", "TOKEN", "WHK"],
        "an archived meeting, a released claim, a budget counter, the shared token and a webhook mark"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cancelled_and_ended_meetings_never_change_again_whatever_arrives() {
    let (stack, clock, app) = in_process_app().await;
    let doctor = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let send = |method: &str, path: &str, body: Option<serde_json::Value>| {
        let req = lambda_request(method, path, Some(&doctor), body.as_ref());
        let function = match method {
            "PUT" => Function::CreateMeeting,
            "GET" if !path.starts_with("/users/") => Function::GetMeetingLink,
            _ => Function::ManageMeeting,
        };
        call(&app, function, req)
    };
    let people = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] });
    let chat = send("PUT", "/conversations/conv-end/meeting", Some(people)).await;
    let cancelled = send(
        "PUT",
        "/appointments/appt-c/meeting",
        Some(appointment_body()),
    )
    .await;
    let ended = send(
        "PUT",
        "/appointments/appt-e/meeting",
        Some(appointment_body()),
    )
    .await;
    let id = |r: &Reply| r.body["meetingId"].as_str().expect("id").to_owned();
    let zoom = |r: &Reply| {
        r.body["providerMeetingId"]
            .as_str()
            .expect("zoom")
            .to_owned()
    };
    let (c, e) = (id(&cancelled), id(&ended));
    assert_eq!(
        send("DELETE", &format!("/meetings/{c}"), None).await.status,
        200
    );
    assert_eq!(
        send("POST", &format!("/meetings/{e}/start"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        send("POST", &format!("/meetings/{e}/end"), None)
            .await
            .status,
        200
    );
    // The conversation's window closes: its meeting is expired, though stored as scheduled.
    clock.advance(chrono::Duration::seconds(3601));
    let mut n = 0;
    for (reply, status) in [
        (&chat, "expired"),
        (&cancelled, "cancelled"),
        (&ended, "ended"),
    ] {
        let before = send("GET", &format!("/meetings/{}", id(reply)), None).await;
        assert_eq!(before.body["status"], status, "{:?}", before.body);
        for kind in [
            "meeting.started",
            "meeting.participant_joined",
            "meeting.participant_left",
            "meeting.ended",
        ] {
            n += 1;
            let outcome = zoom_reports(&stack, &app, &clock, kind, &zoom(reply), n).await;
            assert_eq!(outcome, "unchanged", "{kind} on a {status} meeting");
        }
        let after = send("GET", &format!("/meetings/{}", id(reply)), None).await;
        assert_eq!(after.body, before.body, "nothing changed");
        let link = send("GET", &format!("/meetings/{}/link", id(reply)), None).await;
        assert_error(&link, 409, "MEETING_NOT_JOINABLE");
    }
    // Lists show what GET shows.
    let listed = send("GET", "/users/dr-7/meetings", None).await;
    let statuses: std::collections::BTreeMap<String, String> = listed.body["meetings"]
        .as_array()
        .expect("meetings")
        .iter()
        .map(|m| {
            (
                m["meetingId"].as_str().unwrap_or("").to_owned(),
                m["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses.get(&id(&chat)).map(String::as_str),
        Some("expired")
    );
    let expired = send("GET", "/users/dr-7/meetings?status=scheduled", None).await;
    assert_eq!(
        expired.body["meetings"],
        json!([]),
        "an expired meeting is not scheduled"
    );
    stack.finish(0).await;
}

/// A service token valid at the clock's time.
fn token_at(stack: &Stack, clock: &telemeet::clock::ManualClock) -> String {
    let now = clock.now().timestamp();
    stack.sign(
        Signer::Hs256,
        json!({ "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE, "sub": "svc-1", "role": "service", "org": "clinic-1", "iat": now, "exp": now + 3600 }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_record_past_its_retention_reads_as_absent_while_the_table_still_holds_it() {
    let (stack, clock, app) = in_process_app().await;
    let service = token_at(&stack, &clock);
    let req = lambda_request(
        "PUT",
        "/appointments/appt-kept/meeting",
        Some(&service),
        Some(&appointment_body()),
    );
    let created = call(&app, Function::CreateMeeting, req).await;
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    let req = lambda_request("DELETE", &format!("/meetings/{id}"), Some(&service), None);
    assert_eq!(call(&app, Function::ManageMeeting, req).await.status, 200);
    // A week and a day on, the weekly cleanup archives it, kept for a year.
    clock.advance(chrono::Duration::days(8));
    let event = json!({ "version": "0", "id": "c", "detail-type": "Scheduled Event", "source": "aws.events", "time": clock.now().to_rfc3339(), "resources": [], "detail": {} });
    let settings = telemeet::cleanup::CleanupSettings::default();
    let deadline = clock.instant() + std::time::Duration::from_secs(30);
    let summary = telemeet::cleanup::run(&app, &settings, &event, deadline)
        .await
        .expect("summary");
    assert_eq!(summary["archived"], 1, "{summary}");
    let read = |token: String| {
        let req = lambda_request("GET", &format!("/meetings/{id}"), Some(&token), None);
        call(&app, Function::GetMeetingLink, req)
    };
    assert_eq!(
        read(token_at(&stack, &clock)).await.body["status"],
        "archived"
    );
    // A year and a day later TTL may not have run (moto never does): the record is absent.
    clock.advance(chrono::Duration::days(366));
    assert_eq!(
        table_items(&stack, &format!("MTG#{id}")).await.len(),
        1,
        "still in the table"
    );
    assert_error(&read(token_at(&stack, &clock)).await, 404, "NOT_FOUND");
    stack.finish(0).await;
}

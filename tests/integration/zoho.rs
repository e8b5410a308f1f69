//! Zoho Meeting end to end against the Zoho sandbox: sessions created, linked, rescheduled,
//! cancelled and cleaned up; one access token shared by every container and refreshed
//! within Zoho's 10-per-10-minutes limit; and each of the sandbox's fault switches.

use serde_json::{Value, json};
use std::sync::Arc;
use telemeet::clock::{Clock, ManualClock, Wait};
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

const CREATE: &str = "POST /api/v2/{zsoid}/sessions.json";
const TOKEN: &str = "POST /oauth/v2/token";

fn zoho_body(start: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "hostUserId": "dr-7",
        "participantUserIds": ["pat-9"],
        "startTime": start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "durationMinutes": 30,
        "timezone": "Europe/Berlin",
        "provider": "zoho",
    })
}

async fn sessions(stack: &Stack) -> Value {
    stack
        .zoho(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await
}

async fn tokens(stack: &Stack) -> Value {
    stack
        .zoho(reqwest::Method::GET, "/__sandbox/tokens", None)
        .await
}

/// Asserts the session carries our marker, dated within a minute of `at` (the marking time
/// Zoho does not tell otherwise, for the orphan pass).
fn assert_marked(s: &Value, id: &str, at: chrono::DateTime<chrono::Utc>, why: &str) {
    let agenda = s["agenda"].as_str().unwrap_or_default();
    let marked_at = agenda
        .strip_prefix(&format!("telemeet:local:{id}:"))
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("{why}: {agenda:?} is no dated marker of {id}"));
    assert!((marked_at - at.timestamp()).abs() <= 60, "{why}: {agenda}");
}

/// The session the sandbox holds under `key`.
async fn session(stack: &Stack, key: &str) -> Value {
    sessions(stack).await["meetings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["meetingKey"].to_string().trim_matches('"') == key)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn zoho_meetings_are_created_linked_rescheduled_cancelled_and_cleaned_up() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let host = stack.token("dr-7", "practitioner", "clinic-1");
    let patient = stack.token("pat-9", "patient", "clinic-1");
    let start = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .expect("time")
        .and_utc();

    let created = api
        .put_appointment(&service, "appt-zoho", &zoho_body(start))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["provider"], "zoho");
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    let key = created.body["providerMeetingId"]
        .as_str()
        .expect("meeting key")
        .to_owned();
    let s = session(&stack, &key).await;
    assert_marked(&s, &id, chrono::Utc::now(), "marked, no PHI");
    assert_eq!(s["topic"], "Video consultation");
    assert_eq!(s["timezone"], "Europe/Berlin");
    assert_eq!(s["duration"], 30 * 60_000);
    assert_eq!(
        s["startTimeMillisec"].as_str(),
        Some(start.timestamp_millis().to_string().as_str()),
        "11:00 in Berlin is 10:00 UTC"
    );
    let again = api
        .put_appointment(&service, "appt-zoho", &zoho_body(start))
        .await;
    assert_eq!(
        (again.status, &again.body["meetingId"]),
        (200, &created.body["meetingId"])
    );

    // The practitioner gets Zoho's start link, the patient the join link.
    let host_link = api.get(&host, &format!("/meetings/{id}/link")).await.body;
    let join_link = api
        .get(&patient, &format!("/meetings/{id}/link"))
        .await
        .body;
    assert_eq!(
        (&host_link["role"], &join_link["role"]),
        (&json!("host"), &json!("participant"))
    );
    assert_same_link(&host_link["url"], &s["startLink"], "host link = startLink");
    assert_same_link(
        &join_link["url"],
        &s["joinLink"],
        "participant link = joinLink",
    );
    // Zoho's joinLink carries no passcode: the session's pwd comes beside it.
    assert_eq!(join_link["password"], s["pwd"], "the passcode is pwd");
    assert!(s["pwd"].as_str().is_some_and(|p| !p.is_empty()));
    let refused = api
        .get(&patient, &format!("/meetings/{id}/link?role=host"))
        .await;
    assert_error(&refused, 403, "FORBIDDEN");

    // Reschedule: Zoho's session follows.
    let later = start + chrono::Duration::hours(2);
    let patched = api
        .send(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&service),
            Some(json!({ "startTime": later.to_rfc3339(), "durationMinutes": 45 }).to_string()),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let s = session(&stack, &key).await;
    assert_eq!(
        (s["startTimeMillisec"].as_str(), s["duration"].as_i64()),
        (
            Some(later.timestamp_millis().to_string().as_str()),
            Some(45 * 60_000)
        )
    );
    assert_marked(&s, &id, chrono::Utc::now(), "the marker stays");

    // Cancel: deleted at Zoho; repeating it answers the same.
    for _ in 0..2 {
        let cancelled = api
            .send("DELETE", &format!("/meetings/{id}"), Some(&service), None)
            .await;
        assert_eq!(
            (cancelled.status, cancelled.body["status"].as_str()),
            (200, Some("cancelled"))
        );
    }
    assert!(session(&stack, &key).await.is_null());
    assert!(
        sessions(&stack).await["deleted"]
            .as_array()
            .is_some_and(|d| d.iter().any(|k| k.to_string().trim_matches('"') == key))
    );

    // A meeting that took place is deleted at Zoho by the weekly cleanup.
    let past = chrono::Utc::now() - chrono::Duration::hours(3);
    let done = api
        .put_appointment(&service, "appt-zoho-done", &zoho_body(past))
        .await
        .body;
    let done_id = done["meetingId"].as_str().expect("id");
    let done_key = done["providerMeetingId"].as_str().expect("key").to_owned();
    for action in ["start", "end"] {
        let r = api
            .send(
                "POST",
                &format!("/meetings/{done_id}/{action}"),
                Some(&service),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{action}: {:?}", r.body);
    }
    let scheduled = json!({ "time": (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339(), "detail": {} });
    let summary: Value = reqwest::Client::new()
        .post(format!("{}/local/events/cleanup", stack.gateway()))
        .json(&scheduled)
        .send()
        .await
        .expect("cleanup")
        .json()
        .await
        .expect("summary");
    // The cancelled meeting is archived too; only the ended one was still at Zoho.
    assert_eq!(
        (
            summary["archived"].as_u64(),
            summary["providerDeleted"].as_u64()
        ),
        (Some(2), Some(1)),
        "{summary}"
    );
    assert!(
        session(&stack, &done_key).await.is_null(),
        "deleted at Zoho"
    );

    // All of it on one access token.
    assert_eq!(tokens(&stack).await["issued"], 1);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zoho_token_is_shared_by_containers_and_refreshed_within_zohos_limit() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    // Four containers: each its own App (its own token cache), all on one table.
    let mut containers = Vec::new();
    for _ in 0..4 {
        containers.push(Arc::new(
            stack
                .app_configured(
                    clock.clone(),
                    Settings::default(),
                    &[("MEETING_PROVIDER", "zoho")],
                )
                .await
                .expect("app"),
        ));
    }
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let burst = |round: usize| {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let app = containers[i % containers.len()].clone();
                let req = lambda_request(
                    "PUT",
                    &format!("/appointments/appt-{round}-{i}/meeting"),
                    Some(&service),
                    Some(&zoho_body(start)),
                );
                tokio::spawn(async move { call(&app, Function::CreateMeeting, req).await.status })
            })
            .collect();
        futures_join(tasks)
    };

    let statuses = burst(1).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let t = tokens(&stack).await;
    assert_eq!(
        t["issued"], 1,
        "20 requests on 4 cold containers: one token ({t})"
    );

    // Zoho revokes it: every container's next call is refused (code 2000), and still only
    // one of them fetches a new token, which the others read from the table.
    stack
        .zoho(reqwest::Method::POST, "/__sandbox/revoke", None)
        .await;
    let statuses = burst(2).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let t = tokens(&stack).await;
    assert_eq!(t["issued"], 2, "one refresh for 20 refusals ({t})");
    assert_eq!(
        sessions(&stack).await["meetings"].as_array().map(Vec::len),
        Some(40)
    );

    // Forced refreshes stop at telemeet's budget (8 per 10 minutes, below Zoho's 10):
    // callers get 429 with Retry-After instead of Zoho locking the refresh token.
    let mut limited = None;
    for i in 0..10 {
        stack
            .zoho(reqwest::Method::POST, "/__sandbox/revoke", None)
            .await;
        let req = lambda_request(
            "PUT",
            &format!("/appointments/appt-forced-{i}/meeting"),
            Some(&service),
            Some(&zoho_body(start)),
        );
        let r = call(&containers[i % 4], Function::CreateMeeting, req).await;
        if r.status != 201 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("the budget ends the refreshes");
    assert_error(&limited, 429, "PROVIDER_RATE_LIMITED");
    let retry_after: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let t = tokens(&stack).await;
    assert_eq!(t["issued"], 8, "{t}");
    assert_eq!(t["refused"], 0, "Zoho never had to refuse a token: {t}");
    assert!(t["maxInWindow"].as_u64().is_some_and(|m| m <= 10), "{t}");

    // Ten minutes later (clock injected) the budget is back.
    clock.advance(chrono::Duration::minutes(11));
    let req = lambda_request(
        "PUT",
        "/appointments/appt-after-window/meeting",
        Some(&service),
        Some(&zoho_body(start)),
    );
    assert_eq!(
        call(&containers[0], Function::CreateMeeting, req)
            .await
            .status,
        201
    );
    drop(containers);
    stack.finish(0).await;
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// One in-process container on Zoho whose waits (retries among them) are recorded, not slept.
async fn zoho_app(stack: &Stack) -> (telemeet::App, Arc<ManualClock>) {
    let clock = manual_clock();
    let app = stack
        .app_configured(
            clock.clone(),
            Settings::default(),
            &[("MEETING_PROVIDER", "zoho")],
        )
        .await
        .expect("app");
    (app, clock)
}

async fn put(stack: &Stack, app: &telemeet::App, appointment: &str) -> Reply {
    let service = day_token(stack, "svc-1", "service", "clinic-1");
    let req = lambda_request(
        "PUT",
        &format!("/appointments/{appointment}/meeting"),
        Some(&service),
        Some(&zoho_body(chrono::Utc::now() + chrono::Duration::days(1))),
    );
    call(app, Function::CreateMeeting, req).await
}

#[tokio::test]
async fn zoho_fault_switches_are_survived_or_answered_per_the_contract() {
    let stack = in_process_stack().await;
    let (app, clock) = zoho_app(&stack).await;
    let count = |op: &'static str| stack.zoho_calls("counts", op);

    // status: a 500 on create is retried and makes one session.
    stack
        .zoho_fault(json!({ "operation": CREATE, "kind": "status", "status": 500 }))
        .await;
    assert_eq!(put(&stack, &app, "appt-500").await.status, 201);
    assert_eq!(count(CREATE).await, 2);
    assert_eq!(clock.waits_for(Wait::ProviderRetry).len(), 1, "one backoff");

    // rate_limit: Retry-After is honoured, then the retry succeeds.
    stack
        .zoho_fault(json!({ "operation": CREATE, "kind": "rate_limit", "retryAfter": "2" }))
        .await;
    assert_eq!(put(&stack, &app, "appt-429").await.status, 201);
    assert_eq!(
        clock.waits_for(Wait::ProviderRetry).last().copied(),
        Some(std::time::Duration::from_secs(2))
    );

    // token_invalid (code 2000): one refresh, then the call succeeds.
    let issued = tokens(&stack).await["issued"].as_u64().expect("issued");
    stack
        .zoho_fault(json!({ "operation": CREATE, "kind": "token_invalid" }))
        .await;
    assert_eq!(put(&stack, &app, "appt-2000").await.status, 201);
    assert_eq!(tokens(&stack).await["issued"].as_u64(), Some(issued + 1));

    // drop_after: the session was made but the answer lost; the retry finds it by its
    // marker instead of making a second one.
    let before = sessions(&stack).await["meetings"]
        .as_array()
        .map_or(0, Vec::len);
    stack
        .zoho_fault(json!({ "operation": CREATE, "kind": "drop_after" }))
        .await;
    let adopted = put(&stack, &app, "appt-lost").await;
    assert_eq!(adopted.status, 201, "{:?}", adopted.body);
    let after = sessions(&stack).await;
    assert_eq!(
        after["meetings"].as_array().map_or(0, Vec::len),
        before + 1,
        "exactly one session"
    );
    let key = adopted.body["providerMeetingId"].as_str().expect("key");
    assert!(!session(&stack, key).await.is_null());

    // delay past the attempt timeout: the delete is retried (it is idempotent).
    let id = adopted.body["meetingId"].as_str().expect("id").to_owned();
    stack
        .zoho_fault(json!({ "operation": "DELETE /api/v2/{zsoid}/sessions/{meetingKey}.json", "kind": "delay", "ms": 6000 }))
        .await;
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let cancel = call(
        &app,
        Function::ManageMeeting,
        lambda_request("DELETE", &format!("/meetings/{id}"), Some(&service), None),
    )
    .await;
    assert_eq!(
        (cancel.status, cancel.body["status"].as_str()),
        (200, Some("cancelled")),
        "{:?}",
        cancel.body
    );
    assert!(session(&stack, key).await.is_null());

    // too_many at the token endpoint: Zoho's own refusal is a 429 with Retry-After, not
    // a retry storm against the accounts server.
    stack
        .zoho(reqwest::Method::POST, "/__sandbox/revoke", None)
        .await;
    stack
        .zoho_fault(json!({ "operation": TOKEN, "kind": "too_many" }))
        .await;
    let refused = put(&stack, &app, "appt-too-many").await;
    assert_error(&refused, 429, "PROVIDER_RATE_LIMITED");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(tokens(&stack).await["faulted"], 1);
    // The next call gets a token again.
    assert_eq!(put(&stack, &app, "appt-too-many").await.status, 201);

    // status on the token endpoint: a 503 from accounts is retried.
    stack
        .zoho(reqwest::Method::POST, "/__sandbox/revoke", None)
        .await;
    stack
        .zoho_fault(json!({ "operation": TOKEN, "kind": "status", "status": 503 }))
        .await;
    assert_eq!(put(&stack, &app, "appt-accounts-503").await.status, 201);

    // A provider that keeps failing: 503 with Retry-After, no meeting.
    stack
        .zoho_fault(json!({ "operation": CREATE, "kind": "status", "status": 502, "times": -1 }))
        .await;
    let down = put(&stack, &app, "appt-down").await;
    assert_error(&down, 503, "PROVIDER_UNAVAILABLE");
    assert!(down.header("retry-after").is_some());
    stack
        .zoho(reqwest::Method::DELETE, "/__sandbox/faults", None)
        .await;
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_zoho_credentials_are_read_again_once_after_zoho_refuses_them_but_not_in_a_flood() {
    // Guarantee 5 for Zoho: the cached secret is re-read after an authentication failure,
    // once it is older than the 30 s floor.
    let stack = in_process_stack().await;
    let (app, clock) = zoho_app(&stack).await;
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws_config().await);
    let current: Value = serde_json::from_str(
        sm.get_secret_value()
            .secret_id(local_stack::ZOHO_SECRET_ID)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .expect("GetSecretValue")
            .secret_string()
            .expect("a string secret"),
    )
    .expect("JSON");
    let mut wrong = current.clone();
    wrong["clientSecret"] = json!("not-the-zoho-client-secret");
    stack.put_secret(local_stack::ZOHO_SECRET_ID, &wrong).await;
    // Read (wrong) and refused: a configuration error, 502. Rotated back, a refusal within
    // 30 s of the read reads nothing again.
    let refused = put(&stack, &app, "appt-wrong-creds").await;
    assert_error(&refused, 502, "PROVIDER_REJECTED");
    stack
        .put_secret(local_stack::ZOHO_SECRET_ID, &current)
        .await;
    let again = put(&stack, &app, "appt-wrong-creds").await;
    assert_error(&again, 502, "PROVIDER_REJECTED");
    assert_eq!(tokens(&stack).await["issued"], 0);
    // Past the floor, Zoho's refusal of the cached value makes the one re-read that picks
    // up the right one.
    clock.advance(chrono::Duration::seconds(31));
    let created = put(&stack, &app, "appt-right-creds").await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(tokens(&stack).await["issued"], 1);
    assert_eq!(
        stack.zoho_calls("counts", TOKEN).await,
        4,
        "two refused grants, one refused then one accepted"
    );
    stack.finish(0).await;
}

const LIST: &str = "GET /api/v2/{zsoid}/sessions.json";
const GET_ONE: &str = "GET /api/v2/{zsoid}/sessions/{meetingKey}.json";
const INDEX_MODES: [&str; 2] = ["records-from-1", "pages-from-0"];

/// `count` sessions made at the sandbox outside telemeet, starting at `start` (in UTC).
async fn seed(stack: &Stack, count: u32, start: chrono::DateTime<chrono::Utc>, agenda: &str) {
    let session = json!({
        "topic": "Video consultation", "agenda": agenda, "duration": 1_800_000,
        "startTime": start.format("%b %d, %Y %I:%M %p").to_string(), "timezone": "UTC",
    });
    let seeded = stack
        .zoho(
            reqwest::Method::POST,
            "/__sandbox/seed",
            Some(json!({ "count": count, "session": session })),
        )
        .await;
    assert_eq!(
        seeded["meetingKeys"].as_array().map(Vec::len),
        Some(count as usize),
        "{seeded}"
    );
}

/// A clean sandbox whose list's `index` reads as `mode`.
async fn reset_with_index_mode(stack: &Stack, mode: &str) {
    stack
        .zoho(reqwest::Method::POST, "/__sandbox/reset", None)
        .await;
    stack
        .zoho(
            reqwest::Method::POST,
            "/__sandbox/index-mode",
            Some(json!({ "mode": mode })),
        )
        .await;
}

#[tokio::test]
async fn a_lost_zoho_create_is_found_on_a_later_page_whatever_the_list_index_counts() {
    let stack = in_process_stack().await;
    let (app, _clock) = zoho_app(&stack).await;
    for (i, mode) in INDEX_MODES.iter().enumerate() {
        reset_with_index_mode(&stack, mode).await;
        // A create at another time first: the reset revoked the container's token.
        let service = day_token(&stack, "svc-1", "service", "clinic-1");
        let start = chrono::Utc::now() + chrono::Duration::days(3);
        let warm = lambda_request(
            "PUT",
            &format!("/appointments/appt-warm-{i}/meeting"),
            Some(&service),
            Some(&zoho_body(start)),
        );
        assert_eq!(call(&app, Function::CreateMeeting, warm).await.status, 201);
        // 150 sessions listed before ours (they start earlier): ours is on the second page
        // (with the warm one, also another time's: no candidate).
        seed(
            &stack,
            150,
            chrono::Utc::now() + chrono::Duration::hours(2),
            "Follow-up",
        )
        .await;
        stack
            .zoho_fault(json!({ "operation": CREATE, "kind": "drop_after" }))
            .await;
        let adopted = put(&stack, &app, &format!("appt-lost-{i}")).await;
        assert_eq!(adopted.status, 201, "{mode}: {:?}", adopted.body);
        let all = sessions(&stack).await;
        assert_eq!(
            all["meetings"].as_array().map(Vec::len),
            Some(152),
            "{mode}: no second session"
        );
        let key = adopted.body["providerMeetingId"].as_str().expect("key");
        assert!(!session(&stack, key).await.is_null(), "{mode}");
        // Only the session of the same topic and start is read on its own.
        assert_eq!(stack.zoho_calls("counts", GET_ONE).await, 1, "{mode}");
        // Records: index 1 and the default page are the same, index 101 the second; pages:
        // the default page is page 0, index 1 the second.
        let lists = if *mode == "records-from-1" { 3 } else { 2 };
        assert_eq!(stack.zoho_calls("counts", LIST).await, lists, "{mode}");
    }
    stack.finish(0).await;
}

#[tokio::test]
async fn zoho_orphans_are_deleted_only_once_their_marker_is_an_hour_old_whatever_the_list_index_counts()
 {
    let stack = in_process_stack().await;
    let (app, clock) = zoho_app(&stack).await;
    for mode in INDEX_MODES {
        reset_with_index_mode(&stack, mode).await;
        let now = chrono::Utc::now();
        let later = now + chrono::Duration::hours(3);
        seed(&stack, 120, now + chrono::Duration::hours(2), "Follow-up").await;
        // After them in the list: orphans (our marker, no record) marked 2 hours and 10
        // minutes ago, one from before markers were dated, another deployment's old one.
        let marked = |id: &str, ago: i64| {
            format!(
                "telemeet:local:{id}:{}",
                (now - chrono::Duration::minutes(ago)).timestamp()
            )
        };
        seed(&stack, 1, later, &marked("mtg_oldorphan", 120)).await;
        seed(&stack, 1, later, &marked("mtg_youngorphan", 10)).await;
        seed(&stack, 1, later, "telemeet:local:mtg_undated").await;
        seed(
            &stack,
            1,
            later,
            &format!(
                "telemeet:staging:mtg_theirs:{}",
                (now - chrono::Duration::hours(5)).timestamp()
            ),
        )
        .await;
        let summary = telemeet::cleanup::run(
            &app,
            &telemeet::cleanup::CleanupSettings::default(),
            &json!({ "time": now.to_rfc3339(), "detail": {} }),
            clock.instant() + std::time::Duration::from_secs(30),
        )
        .await
        .expect("a summary");
        assert_eq!(summary["orphansDeleted"], 1, "{mode}: {summary}");
        let left: Vec<String> = sessions(&stack).await["meetings"]
            .as_array()
            .expect("meetings")
            .iter()
            .filter_map(|s| s["agenda"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(left.len(), 123, "{mode}");
        assert!(!left.iter().any(|a| a.contains("mtg_oldorphan")), "{mode}");
        for kept in ["mtg_youngorphan", "mtg_undated", "mtg_theirs"] {
            assert!(left.iter().any(|a| a.contains(kept)), "{mode}: {kept} kept");
        }
    }
    stack.finish(0).await;
}

#[tokio::test]
async fn zoho_throttle_answers_are_rate_limits_whatever_their_status_or_language() {
    let stack = in_process_stack().await;
    let (app, clock) = zoho_app(&stack).await;
    assert_eq!(put(&stack, &app, "appt-warm").await.status, 201);
    for (i, (status, lang)) in [(200, "en"), (400, "en"), (200, "zh"), (400, "zh")]
        .into_iter()
        .enumerate()
    {
        let case = format!("{status} {lang}");
        // The Meeting API: a throttle is never a success (nothing parsed from it) nor a
        // refusal of the token (no refresh).
        let issued = tokens(&stack).await["issued"].clone();
        stack
            .zoho_fault(json!({ "operation": CREATE, "kind": "throttle", "status": status, "lang": lang, "times": -1 }))
            .await;
        let limited = put(&stack, &app, &format!("appt-throttled-{i}")).await;
        assert_error(&limited, 429, "PROVIDER_RATE_LIMITED");
        assert!(limited.header("retry-after").is_some(), "{case}");
        assert_eq!(tokens(&stack).await["issued"], issued, "{case}: no refresh");
        stack
            .zoho(reqwest::Method::DELETE, "/__sandbox/faults", None)
            .await;
        // Zoho Accounts: a throttled grant is a rate limit, not refused credentials. (Each
        // case spends two refreshes of telemeet's budget: past its window first.)
        clock.advance(chrono::Duration::minutes(11));
        stack
            .zoho(reqwest::Method::POST, "/__sandbox/revoke", None)
            .await;
        stack
            .zoho_fault(
                json!({ "operation": TOKEN, "kind": "throttle", "status": status, "lang": lang }),
            )
            .await;
        let refused = put(&stack, &app, &format!("appt-grant-throttled-{i}")).await;
        assert_error(&refused, 429, "PROVIDER_RATE_LIMITED");
        assert!(refused.header("retry-after").is_some(), "{case}");
        assert_eq!(
            put(&stack, &app, &format!("appt-grant-throttled-{i}"))
                .await
                .status,
            201,
            "{case}: the next call gets a token"
        );
    }
    stack.finish(0).await;
}

/// `n` creates, each after Zoho revoked the token: each needs a refresh.
async fn forced(stack: &Stack, app: &telemeet::App, tag: &str, n: usize) -> Vec<Reply> {
    let mut replies = Vec::new();
    for i in 0..n {
        stack
            .zoho(reqwest::Method::POST, "/__sandbox/revoke", None)
            .await;
        replies.push(put(stack, app, &format!("appt-forced-{tag}-{i}")).await);
    }
    replies
}

#[tokio::test]
async fn zoho_refreshes_are_budgeted_over_a_sliding_ten_minutes() {
    let stack = in_process_stack().await;
    let (app, clock) = zoho_app(&stack).await;
    let ok = |replies: &[Reply]| replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(ok(&forced(&stack, &app, "a", 4).await), 4);
    clock.advance(chrono::Duration::minutes(6));
    assert_eq!(
        ok(&forced(&stack, &app, "b", 5).await),
        4,
        "8 in 10 minutes"
    );
    // Zoho's own window runs on real time: start it afresh, the budget is on our clock.
    stack
        .zoho(reqwest::Method::POST, "/__sandbox/reset", None)
        .await;
    // 10.5 minutes after the first four: only their places are free again (a fixed window
    // would start anew and allow 8, 12 within 10 minutes).
    clock.advance(chrono::Duration::seconds(270));
    let replies = forced(&stack, &app, "c", 5).await;
    assert_eq!(ok(&replies), 4);
    let limited = replies.last().expect("a fifth");
    assert_error(limited, 429, "PROVIDER_RATE_LIMITED");
    // Until the second four leave (a second may have passed in real time meanwhile).
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((329..=330).contains(&wait), "{wait}");
    assert_eq!(
        tokens(&stack).await["issued"],
        4,
        "Zoho saw 4 since the reset"
    );
    stack.finish(0).await;
}

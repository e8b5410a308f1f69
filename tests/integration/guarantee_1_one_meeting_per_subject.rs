//! Guarantee 1: one meeting per subject, whatever the concurrency, crashes and provider
//! failures.

use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

/// Loads each gateway's auth secret first, so the PUTs below race at the claim instead of
/// queueing behind the first secret read.
async fn warm_up(stack: &Stack, token: &str) {
    for gateway in &stack.gateway_urls {
        assert_eq!(
            Api::new(gateway)
                .get(token, "/meetings/mtg_warmup")
                .await
                .status,
            404
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_puts_for_one_appointment_across_two_processes_create_exactly_one_meeting()
{
    let stack = Stack::start(Options {
        gateways: 2,
        ..Default::default()
    })
    .await
    .expect("stack");
    // Different callers who may all provision this appointment.
    let tokens = [
        stack.token("svc-1", "service", "clinic-1"),
        stack.token("staff-1", "staff", "clinic-1"),
        stack.token("admin-1", "admin", "clinic-1"),
        stack.token("dr-7", "practitioner", "clinic-1"),
    ];
    warm_up(&stack, &tokens[0]).await;
    let body = appointment_body();
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let api = Api::new(&stack.gateway_urls[i % 2]);
            let token = tokens[i % tokens.len()].clone();
            let (body, start) = (body.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                api.put_appointment(&token, "appt-concurrent", &body).await
            })
        })
        .collect();
    let mut statuses = HashMap::new();
    let mut ids = HashSet::new();
    for t in tasks {
        let r = t.await.expect("task");
        *statuses.entry(r.status).or_insert(0) += 1;
        ids.insert(r.body["meetingId"].as_str().expect("a meeting").to_owned());
    }
    assert_eq!(statuses, HashMap::from([(201, 1), (200, 49)]));
    assert_eq!(ids.len(), 1, "all answers name the same meeting");
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        1,
        "exactly one create reached Zoom"
    );
    // Only the winner talked to Zoom.
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 1);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_appointments_with_ten_concurrent_puts_each_create_twenty_meetings() {
    let stack = Stack::start(Options {
        gateways: 2,
        ..Default::default()
    })
    .await
    .expect("stack");
    let token = stack.token("svc-1", "service", "clinic-1");
    warm_up(&stack, &token).await;
    let body = appointment_body();
    let start = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let api = Api::new(&stack.gateway_urls[i % 2]);
            let (token, body, start) = (token.clone(), body.clone(), start.clone());
            let appointment = format!("appt-{}", i % 20);
            tokio::spawn(async move {
                start.wait().await;
                (
                    appointment.clone(),
                    api.put_appointment(&token, &appointment, &body).await,
                )
            })
        })
        .collect();
    let mut per_appointment: HashMap<String, (HashSet<String>, usize)> = HashMap::new();
    for t in tasks {
        let (appointment, r) = t.await.expect("task");
        assert!(r.status == 200 || r.status == 201, "{r:?}");
        let e = per_appointment.entry(appointment).or_default();
        e.0.insert(r.body["meetingId"].as_str().expect("meeting").to_owned());
        e.1 += usize::from(r.status == 201);
    }
    assert_eq!(per_appointment.len(), 20);
    for (appointment, (ids, created)) in &per_appointment {
        assert_eq!(ids.len(), 1, "{appointment} got one meeting");
        assert_eq!(*created, 1, "{appointment} answered 201 once");
    }
    let distinct: HashSet<_> = per_appointment
        .values()
        .flat_map(|(ids, _)| ids.iter())
        .collect();
    assert_eq!(distinct.len(), 20);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 20);
    // Concurrent creates in one process share one OAuth token: at most one per process.
    assert!(stack.sandbox_count(TOKEN_OP).await <= 2);
    stack.finish(0).await;
}

/// Two apps on one clock, with a 30 s lease: `doomed`, whose holder "dies" between its
/// provider call and its final write (`reached` says it got there), and a healthy one.
async fn crash_apps(
    stack: &Stack,
    clock: &Arc<telemeet::clock::ManualClock>,
) -> (Arc<telemeet::App>, Arc<tokio::sync::Notify>, telemeet::App) {
    let settings = Settings {
        claim_lease: chrono::Duration::seconds(30),
        lease_margin: chrono::Duration::seconds(5),
        claim_wait: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let mut doomed = stack
        .app(clock.clone(), settings.clone())
        .await
        .expect("app");
    let reached = Arc::new(tokio::sync::Notify::new());
    doomed.service.stores.claims = Arc::new(DiesBeforeFinalWrite {
        inner: doomed.service.stores.claims.clone(),
        reached: reached.clone(),
    });
    let app = stack.app(clock.clone(), settings).await.expect("app");
    (Arc::new(doomed), reached, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winner_dying_after_the_provider_call_leaves_no_second_meeting() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let (doomed, reached, app) = crash_apps(&stack, &clock).await;
    let token = stack.token("svc-1", "service", "clinic-1");
    let body = appointment_body();
    let put = || {
        lambda_request(
            "PUT",
            "/appointments/appt-crash/meeting",
            Some(&token),
            Some(&body),
        )
    };

    let winner = {
        let (doomed, req) = (doomed.clone(), put());
        tokio::spawn(async move { call(&doomed, Function::CreateMeeting, req).await })
    };
    reached.notified().await;
    winner.abort(); // the process dies between the provider call and the final write
    assert!(winner.await.is_err());
    assert_eq!(stack.sandbox_succeeded(CREATE_OP).await, 1);

    // Inside the lease the subject is still being provisioned: ask the caller to retry.
    let early = call(&app, Function::CreateMeeting, put()).await;
    assert_error(&early, 409, "CONFLICT");
    assert!(early.header("retry-after").is_some());

    // After the lease, the next caller takes over and adopts the meeting already made.
    clock.advance(chrono::Duration::seconds(31));
    // The taker asks for 45 minutes; the adopted Zoom meeting says 30, and Zoom wins.
    let mut longer = body.clone();
    longer["durationMinutes"] = 45.into();
    let req = lambda_request(
        "PUT",
        "/appointments/appt-crash/meeting",
        Some(&token),
        Some(&longer),
    );
    let taken = call(&app, Function::CreateMeeting, req).await;
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    assert_eq!(
        taken.body["durationMinutes"], 30,
        "the record matches the adopted room"
    );
    let made = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    let zoom_ids: Vec<String> = made["meetings"]
        .as_array()
        .expect("meetings")
        .iter()
        .map(|m| m["id"].to_string())
        .collect();
    assert_eq!(
        zoom_ids,
        [taken.body["providerMeetingId"]
            .as_str()
            .expect("id")
            .to_owned()]
    );
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        1,
        "no second create at Zoom"
    );

    let again = call(&app, Function::CreateMeeting, put()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["meetingId"], taken.body["meetingId"]);
    stack.finish(0).await;
}

#[tokio::test]
async fn a_provider_500_on_create_answers_503_with_retry_after_and_the_next_put_creates_one() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let token = stack.token("svc-1", "service", "clinic-1");
    // Zoom fails every attempt the retry policy makes (3).
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "status", "status": 500, "times": 3 }))
        .await;

    let failed = api
        .put_appointment(&token, "appt-500", &appointment_body())
        .await;
    assert_error(&failed, 503, "PROVIDER_UNAVAILABLE");
    let retry: u64 = failed
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry > 0);
    assert!(
        // The message and details only: the timestamp or request id may hold "500" by chance.
        ![
            &failed.body["error"]["message"],
            &failed.body["error"]["details"]
        ]
        .iter()
        .any(|v| v.to_string().contains("500")),
        "no provider detail in the body"
    );

    let created = api
        .put_appointment(&token, "appt-500", &appointment_body())
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let again = api
        .put_appointment(&token, "appt-500", &appointment_body())
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["meetingId"], created.body["meetingId"]);
    assert_eq!(stack.sandbox_succeeded(CREATE_OP).await, 1);
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        4,
        "3 failed attempts, then one create"
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn a_lost_answer_to_a_create_is_adopted_not_duplicated() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let token = stack.token("svc-1", "service", "clinic-1");
    // Zoom creates the meeting but the answer never arrives.
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "drop_after" }))
        .await;

    // The retry looks the meeting up by its marker before creating again, and adopts it.
    let created = api
        .put_appointment(&token, "appt-lost", &appointment_body())
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let made = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    let made = made["meetings"].as_array().expect("meetings");
    assert_eq!(made.len(), 1, "one meeting at Zoom");
    assert_eq!(
        made[0]["id"].to_string(),
        created.body["providerMeetingId"].as_str().expect("id")
    );
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 1, "no second create");
    assert_eq!(stack.sandbox_count(LIST_OP).await, 1, "one marker search");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_outlasting_the_claim_lease_is_abandoned_then_adopted_not_duplicated() {
    let stack = in_process_stack().await;
    // Provider work must end 1 s before a 3 s lease: a 2 s budget for a create Zoom holds.
    let settings = Settings {
        claim_lease: chrono::Duration::seconds(3),
        lease_margin: chrono::Duration::seconds(1),
        claim_wait: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let clock = manual_clock();
    let app = Arc::new(stack.app(clock.clone(), settings).await.expect("app"));
    let token = stack.token("svc-1", "service", "clinic-1");
    let body = appointment_body();
    let put = || {
        lambda_request(
            "PUT",
            "/appointments/appt-slow/meeting",
            Some(&token),
            Some(&body),
        )
    };
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "hold" }))
        .await;

    let abandoned = {
        let (app, req) = (app.clone(), put());
        tokio::spawn(async move { call(&app, Function::CreateMeeting, req).await })
    };
    // The create reaches Zoom and hangs there; time runs up to the end of the budget.
    assert!(
        create_arrives(&stack).await,
        "the create reached the sandbox"
    );
    clock.advance(chrono::Duration::milliseconds(1999));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!abandoned.is_finished(), "still waiting inside its budget");
    clock.advance(chrono::Duration::milliseconds(1));
    let abandoned = abandoned.await.expect("task");
    assert_error(&abandoned, 503, "PROVIDER_UNAVAILABLE");

    // The slow create still lands at Zoom; the next PUT finds it by marker.
    stack
        .sandbox(reqwest::Method::POST, "/__sandbox/release", None)
        .await;
    assert!(
        zoom_meetings_reach(&stack, 1).await,
        "the delayed create reached the sandbox"
    );
    let adopted = call(&app, Function::CreateMeeting, put()).await;
    assert_eq!(adopted.status, 201, "{:?}", adopted.body);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 1, "no second create");
    stack.finish(0).await;
}

/// Waits (up to 5 s) until the Zoom sandbox has received a create.
async fn create_arrives(stack: &Stack) -> bool {
    for _ in 0..250 {
        if stack.sandbox_count(CREATE_OP).await >= 1 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// An org-admin route, in process.
async fn org_call(
    app: &telemeet::App,
    method: &str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> Reply {
    let req = lambda_request(method, path, Some(token), Some(body));
    call(app, Function::OrgAdmin, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winner_dying_leaves_no_second_meeting_even_when_the_host_was_remapped_meanwhile() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let (doomed, reached, app) = crash_apps(&stack, &clock).await;
    // A clinic on its own Zoom account, dr-1 mapped to their own Zoom user.
    let (first, second) = ("dr1@remap.example", "dr1-new@remap.example");
    let connection = stack.zoom_account(&[first, second]).await;
    let admin = day_token(&stack, "adm", "admin", "clinic-r");
    let r = org_call(&app, "PUT", "/org/providers/zoom", &admin, &connection).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let map = |user: &str| json!({ "zoomUser": user });
    let r = org_call(&app, "PUT", "/org/hosts/dr-1", &admin, &map(first)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let token = day_token(&stack, "svc", "service", "clinic-r");
    let mut body = appointment_body();
    body["hostUserId"] = json!("dr-1");
    let put = || {
        let path = "/appointments/appt-remap/meeting";
        lambda_request("PUT", path, Some(&token), Some(&body))
    };

    let winner = {
        let (doomed, req) = (doomed.clone(), put());
        tokio::spawn(async move { call(&doomed, Function::CreateMeeting, req).await })
    };
    reached.notified().await;
    winner.abort(); // dies after Zoom made the meeting under `first`
    assert!(winner.await.is_err());
    assert_eq!(stack.sandbox_succeeded(CREATE_OP).await, 1);

    // The practitioner gets a new Zoom login before anyone retries.
    let r = org_call(&app, "PUT", "/org/hosts/dr-1", &admin, &map(second)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    clock.advance(chrono::Duration::seconds(31));
    let taken = call(&app, Function::CreateMeeting, put()).await;
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        1,
        "the meeting made under the earlier user is adopted, not made again under the new one"
    );
    // The adopted meeting is refreshed under the user it belongs to.
    let id = taken.body["meetingId"].as_str().expect("id");
    let host = day_token(&stack, "dr-1", "practitioner", "clinic-r");
    let link = lambda_request(
        "GET",
        &format!("/meetings/{id}/link?role=host"),
        Some(&host),
        None,
    );
    let link = call(&app, Function::GetMeetingLink, link).await;
    assert_eq!(link.status, 200, "{:?}", link.body);
    let login = stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/whose-link",
            Some(json!({ "url": link.body["url"] })),
        )
        .await;
    assert_eq!(login["email"], first, "{login}");
    stack.finish(0).await;
}

//! Conversation calls (seed 000): whoever calls first creates the room, everyone listed who
//! calls within the reuse window lands in the same one, and after it a new room is made
//! while the old one reads `expired` (guarantee 7: the code's expiry, not TTL's).

use serde_json::json;
use std::sync::Arc;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

fn call_body() -> serde_json::Value {
    json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] })
}

/// The Zoom meeting number in a start or join link (`…/s/<id>?…`, `…/j/<id>?…`).
fn room_of(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_practitioner_calls_then_the_patient_joins_the_same_room_and_after_the_window_a_new_one()
 {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let staff = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let put = |token: &str| {
        lambda_request(
            "PUT",
            "/conversations/conv-1/meeting",
            Some(token),
            Some(&call_body()),
        )
    };

    let first = call(&app, Function::CreateMeeting, put(&staff)).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(
        first.body["subject"],
        json!({ "type": "conversation", "id": "conv-1" })
    );
    assert_eq!(first.body["initiatedBy"], "dr-7");
    assert!(first.body["expiresAt"].is_string());
    let accepted = call(&app, Function::CreateMeeting, put(&patient)).await;
    assert_eq!(accepted.status, 200, "the patient accepts: same meeting");
    assert_eq!(accepted.body["meetingId"], first.body["meetingId"]);

    // Both land in the same room; either may enter first (no waiting room).
    let id = first.body["meetingId"].as_str().expect("id").to_owned();
    let link =
        |token: &str| lambda_request("GET", &format!("/meetings/{id}/link"), Some(token), None);
    let host_link = call(&app, Function::GetMeetingLink, link(&staff)).await;
    let join_link = call(&app, Function::GetMeetingLink, link(&patient)).await;
    assert_eq!(host_link.body["role"], "host");
    assert_eq!(join_link.body["role"], "participant");
    let zoom_id = first.body["providerMeetingId"].as_str().expect("zoom id");
    assert_eq!(
        room_of(host_link.body["url"].as_str().unwrap_or("")),
        zoom_id
    );
    assert_eq!(
        room_of(join_link.body["url"].as_str().unwrap_or("")),
        zoom_id
    );
    let at_zoom = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    let settings = &at_zoom["meetings"][0]["settings"];
    assert_eq!(
        (
            settings["join_before_host"].as_bool(),
            settings["waiting_room"].as_bool()
        ),
        (Some(true), Some(false))
    );

    // An hour on: the old meeting reads expired and gives no links; the next call makes a
    // new meeting.
    clock.advance(chrono::Duration::seconds(3601));
    let old = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}"), Some(&staff), None),
    )
    .await;
    assert_eq!(old.body["status"], "expired");
    assert_error(
        &call(&app, Function::GetMeetingLink, link(&patient)).await,
        409,
        "MEETING_NOT_JOINABLE",
    );
    let later = call(&app, Function::CreateMeeting, put(&patient)).await;
    assert_eq!(later.status, 201, "{:?}", later.body);
    assert_ne!(later.body["meetingId"], first.body["meetingId"]);
    assert_eq!(later.body["initiatedBy"], "pat-9");
    let current = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", "/conversations/conv-1/meeting", Some(&staff), None),
    )
    .await;
    assert_eq!(current.body["meetingId"], later.body["meetingId"]);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 2);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_first_calls_make_one_meeting() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let tokens = [
        stack.token("dr-7", "practitioner", "clinic-1"),
        stack.token("pat-9", "patient", "clinic-1"),
    ];
    // Warm the gateway (secrets), so the calls race at the claim.
    assert_eq!(
        Api::new(stack.gateway())
            .get(&tokens[0], "/meetings/mtg_warmup")
            .await
            .status,
        404
    );
    let start = Arc::new(tokio::sync::Barrier::new(30));
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let (api, token, start) = (
                Api::new(stack.gateway()),
                tokens[i % 2].clone(),
                start.clone(),
            );
            tokio::spawn(async move {
                start.wait().await;
                api.send(
                    "PUT",
                    "/conversations/conv-race/meeting",
                    Some(&token),
                    Some(call_body().to_string()),
                )
                .await
            })
        })
        .collect();
    let (mut created, mut ids) = (0, std::collections::HashSet::new());
    for t in tasks {
        let r = t.await.expect("task");
        assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
        created += usize::from(r.status == 201);
        ids.insert(r.body["meetingId"].as_str().unwrap_or("").to_owned());
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 1);
    stack.finish(0).await;
}

#[tokio::test]
async fn only_people_listed_in_the_conversation_may_call() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let put = |token: &str| {
        let (api, token) = (api.clone(), token.to_owned());
        async move {
            api.send(
                "PUT",
                "/conversations/conv-2/meeting",
                Some(&token),
                Some(call_body().to_string()),
            )
            .await
        }
    };
    assert_error(
        &put(&stack.token("pat-8", "patient", "clinic-1")).await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &put(&stack.token("staff-2", "staff", "clinic-1")).await,
        403,
        "FORBIDDEN",
    );
    assert_eq!(
        put(&stack.token("svc-1", "service", "clinic-1"))
            .await
            .status,
        201
    );
    assert_eq!(
        put(&stack.token("admin-1", "admin", "clinic-1"))
            .await
            .status,
        200
    );
    let outsider = stack.token("pat-8", "patient", "clinic-1");
    assert_error(
        &api.get(&outsider, "/conversations/conv-2/meeting").await,
        404,
        "NOT_FOUND",
    );
    let elsewhere = stack.token("staff-1", "staff", "clinic-2");
    assert_error(
        &api.get(&elsewhere, "/conversations/conv-2/meeting").await,
        404,
        "NOT_FOUND",
    );
    stack.finish(0).await;
}

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

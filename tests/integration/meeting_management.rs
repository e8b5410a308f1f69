//! The meeting lifecycle through the local gateway: reschedule, cancel, start, end, a user's
//! list and stats, each reflected at the Zoom sandbox and in the record.

use serde_json::{Value, json};
use telemeet_local::*;

const PATCH_OP: &str = "PATCH /v2/meetings/{meetingId}";
const DELETE_OP: &str = "DELETE /v2/meetings/{meetingId}";
const STATUS_OP: &str = "PUT /v2/meetings/{meetingId}/status";

async fn create(api: &Api, token: &str, appointment: &str, body: &Value) -> Value {
    let r = api.put_appointment(token, appointment, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

async fn sandbox_meeting(stack: &Stack, zoom_id: &Value) -> Value {
    let all = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    all["meetings"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["id"].as_i64().map(|i| i.to_string()).as_deref() == zoom_id.as_str())
        })
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn reschedule_start_end_and_cancel_reach_zoom_and_the_record() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let host = stack.token("dr-7", "practitioner", "clinic-1");
    let m = create(&api, &service, "appt-life", &appointment_body()).await;
    let id = m["meetingId"].as_str().expect("id").to_owned();

    // Reschedule: Zoom PATCH (204), then the record, by the host.
    let new_start = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%dT15:30:00Z")
        .to_string();
    let patch = json!({ "startTime": new_start, "durationMinutes": 45, "topic": "Follow-up" });
    let r = api
        .send(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&host),
            Some(patch.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["startTime"], new_start);
    assert_eq!(r.body["durationMinutes"], 45);
    assert_eq!(r.body["topic"], "Follow-up");
    assert_eq!(stack.sandbox_succeeded(PATCH_OP).await, 1);
    let at_zoom = sandbox_meeting(&stack, &m["providerMeetingId"]).await;
    assert_eq!(at_zoom["duration"], 45);
    assert_eq!(at_zoom["start_time"], new_start);
    assert_eq!(
        api.get(&host, &format!("/meetings/{id}")).await.body,
        r.body
    );
    let empty = api
        .send(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&host),
            Some("{}".into()),
        )
        .await;
    assert_error(&empty, 400, "VALIDATION_FAILED");

    // Start (a mark), end (Zoom PUT status end), and both are idempotent.
    let started = api
        .send("POST", &format!("/meetings/{id}/start"), Some(&host), None)
        .await;
    assert_eq!(started.body["status"], "started");
    assert!(started.body["startedAt"].is_string());
    let ended = api
        .send("POST", &format!("/meetings/{id}/end"), Some(&host), None)
        .await;
    assert_eq!(ended.status, 200, "{:?}", ended.body);
    assert_eq!(ended.body["status"], "ended");
    assert!(ended.body["endedAt"].is_string());
    assert_eq!(stack.sandbox_succeeded(STATUS_OP).await, 1);
    assert_eq!(
        sandbox_meeting(&stack, &m["providerMeetingId"]).await["status"],
        "finished"
    );
    let again = api
        .send("POST", &format!("/meetings/{id}/end"), Some(&host), None)
        .await;
    assert_eq!(again.body, ended.body);
    assert_eq!(
        stack.sandbox_count(STATUS_OP).await,
        1,
        "no second provider call"
    );

    // Terminal: no going back, no links.
    let late = api
        .send(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&host),
            Some(patch.to_string()),
        )
        .await;
    assert_error(&late, 409, "CONFLICT");
    assert_error(
        &api.send("POST", &format!("/meetings/{id}/start"), Some(&host), None)
            .await,
        409,
        "CONFLICT",
    );
    assert_error(
        &api.send("DELETE", &format!("/meetings/{id}"), Some(&host), None)
            .await,
        409,
        "CONFLICT",
    );
    assert_error(
        &api.get(&host, &format!("/meetings/{id}/link")).await,
        409,
        "MEETING_NOT_JOINABLE",
    );

    // Cancel another: Zoom DELETE, then `cancelled`; repeating answers the same.
    let other = create(&api, &service, "appt-cancel", &appointment_body()).await;
    let oid = other["meetingId"].as_str().expect("id");
    let cancelled = api
        .send("DELETE", &format!("/meetings/{oid}"), Some(&service), None)
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let repeated = api
        .send("DELETE", &format!("/meetings/{oid}"), Some(&service), None)
        .await;
    assert_eq!(repeated.body, cancelled.body);
    assert_eq!(stack.sandbox_count(DELETE_OP).await, 1);
    assert!(
        sandbox_meeting(&stack, &other["providerMeetingId"])
            .await
            .is_null(),
        "gone at Zoom"
    );

    // Stats: counters kept on every transition.
    let stats = api.get(&service, "/stats").await;
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    assert_eq!(stats.body["byStatus"]["ended"], 1);
    assert_eq!(stats.body["byStatus"]["cancelled"], 1);
    assert_eq!(stats.body["byStatus"]["scheduled"], 0);
    assert_eq!(stats.body["byStatus"]["started"], 0);
    assert_eq!(stats.body["byProvider"]["zoom"], 2);
    assert_eq!(
        stats.body["attendance"],
        json!({ "bothJoined": 0, "noShow": 1 })
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn zoom_deletes_of_gone_or_running_meetings_still_cancel() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");

    // Already gone at Zoom (404 / 3001) counts as deleted.
    let gone = create(&api, &service, "appt-gone", &appointment_body()).await;
    stack
        .fault(
            json!({ "operation": DELETE_OP, "kind": "status", "status": 404,
                       "body": { "code": 3001, "message": "Meeting does not exist." } }),
        )
        .await;
    let r = api
        .send(
            "DELETE",
            &format!("/meetings/{}", gone["meetingId"].as_str().unwrap_or("")),
            Some(&service),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "cancelled", "{:?}", r.body);

    // In progress (3002): ended first, then deleted.
    let running = create(&api, &service, "appt-running", &appointment_body()).await;
    stack
        .fault(json!({ "operation": DELETE_OP, "kind": "status", "status": 400,
                       "body": { "code": 3002, "message": "Sorry, you cannot delete this meeting since it is in progress." } }))
        .await;
    let r = api
        .send(
            "DELETE",
            &format!("/meetings/{}", running["meetingId"].as_str().unwrap_or("")),
            Some(&service),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "cancelled", "{:?}", r.body);
    assert_eq!(
        stack.sandbox_count(DELETE_OP).await,
        3,
        "gone, in progress, then deleted"
    );
    assert_eq!(
        stack.sandbox_succeeded(STATUS_OP).await,
        1,
        "ended before the second delete"
    );
    assert!(
        sandbox_meeting(&stack, &running["providerMeetingId"])
            .await
            .is_null()
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_with_250_meetings_pages_by_cursor_and_foreign_cursors_are_rejected() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let base = chrono::Utc::now() + chrono::Duration::days(1);
    // Sixteen at a time: this sets up data, it is not a load test.
    let lanes = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let tasks: Vec<_> = (0..250)
        .map(|i| {
            let (api, service, lanes) = (api.clone(), service.clone(), lanes.clone());
            let start = (base + chrono::Duration::hours(i)).format("%Y-%m-%dT%H:00:00Z").to_string();
                        tokio::spawn(async move {
                let _lane = lanes.acquire().await.expect("semaphore");
                let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"], "startTime": start });
                api.put_appointment(&service, &format!("appt-list-{i}"), &body).await.status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task"), 201);
    }

    let patient = stack.token("pat-9", "patient", "clinic-1");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = api
            .get(&patient, &format!("/users/pat-9/meetings?limit=100{q}"))
            .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        pages += 1;
        let items = page.body["meetings"].as_array().expect("meetings").clone();
        seen.extend(
            items
                .iter()
                .map(|m| m["startTime"].as_str().unwrap_or("").to_owned()),
        );
        match page.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging must end");
    }
    assert_eq!(seen.len(), 250);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ordered by start time, no repeats"
    );
    assert!((3..=4).contains(&pages));

    // A window and a status filter.
    let from = (base + chrono::Duration::hours(10)).format("%Y-%m-%dT%H:00:00Z");
    let to = (base + chrono::Duration::hours(19)).format("%Y-%m-%dT%H:00:00Z");
    let window = api
        .get(
            &patient,
            &format!("/users/pat-9/meetings?from={from}&to={to}"),
        )
        .await;
    assert_eq!(window.body["meetings"].as_array().map(Vec::len), Some(10));
    let none = api
        .get(&patient, "/users/pat-9/meetings?status=cancelled")
        .await;
    assert_eq!(none.body["meetings"], json!([]));
    assert_error(
        &api.get(&patient, "/users/pat-9/meetings?limit=0").await,
        400,
        "VALIDATION_FAILED",
    );
    assert_error(
        &api.get(&patient, "/users/pat-9/meetings?status=done").await,
        400,
        "VALIDATION_FAILED",
    );

    // A cursor is only good for the list it came from.
    let first = api.get(&patient, "/users/pat-9/meetings?limit=5").await;
    let c = first.body["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let staff = stack.token("staff-1", "staff", "clinic-1");
    let foreign_user = api
        .get(&staff, &format!("/users/dr-7/meetings?cursor={c}"))
        .await;
    assert_error(&foreign_user, 400, "VALIDATION_FAILED");
    assert_eq!(error_field(&foreign_user), "cursor");
    let other_org = stack.token("pat-9", "patient", "clinic-2");
    assert_error(
        &api.get(&other_org, &format!("/users/pat-9/meetings?cursor={c}"))
            .await,
        400,
        "VALIDATION_FAILED",
    );
    assert_error(
        &api.get(&patient, "/users/pat-9/meetings?cursor=bm90LWEtY3Vyc29y")
            .await,
        400,
        "VALIDATION_FAILED",
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn the_role_matrix_of_the_management_endpoints() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let t = |sub: &str, role: &str, org: &str| stack.token(sub, role, org);
    let service = t("svc-1", "service", "clinic-1");
    let id = create(&api, &service, "appt-matrix", &appointment_body()).await["meetingId"]
        .as_str()
        .expect("id")
        .to_owned();
    let start = format!("/meetings/{id}/start");

    // May see it, may not manage it: 403. May not see it: 404.
    assert_error(
        &api.send(
            "POST",
            &start,
            Some(&t("pat-9", "patient", "clinic-1")),
            None,
        )
        .await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &api.send(
            "POST",
            &start,
            Some(&t("pat-8", "patient", "clinic-1")),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &api.send(
            "POST",
            &start,
            Some(&t("dr-8", "practitioner", "clinic-1")),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &api.send(
            "POST",
            &start,
            Some(&t("svc-2", "service", "clinic-2")),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &api.send(
            "DELETE",
            &format!("/meetings/{id}"),
            Some(&t("dr-7", "practitioner", "clinic-2")),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    );
    for allowed in [
        t("dr-7", "practitioner", "clinic-1"),
        t("staff-1", "staff", "clinic-1"),
        t("admin-1", "admin", "clinic-1"),
    ] {
        assert_eq!(
            api.send("POST", &start, Some(&allowed), None).await.status,
            200
        );
    }

    // Lists: the user, or service/admin/staff.
    assert_eq!(
        api.get(&t("pat-9", "patient", "clinic-1"), "/users/pat-9/meetings")
            .await
            .status,
        200
    );
    assert_error(
        &api.get(&t("pat-8", "patient", "clinic-1"), "/users/pat-9/meetings")
            .await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &api.get(
            &t("dr-7", "practitioner", "clinic-1"),
            "/users/pat-9/meetings",
        )
        .await,
        403,
        "FORBIDDEN",
    );
    let listed = api
        .get(&t("staff-1", "staff", "clinic-1"), "/users/dr-7/meetings")
        .await;
    assert_eq!(listed.body["meetings"].as_array().map(Vec::len), Some(1));
    // Another org's staff sees nothing of this org.
    let elsewhere = api
        .get(&t("staff-2", "staff", "clinic-2"), "/users/dr-7/meetings")
        .await;
    assert_eq!(elsewhere.body["meetings"], json!([]));

    // Stats: service and admin only; scoped to the org.
    assert_eq!(
        api.get(&t("admin-1", "admin", "clinic-1"), "/stats")
            .await
            .body["byStatus"]["started"],
        1
    );
    assert_eq!(
        api.get(&t("svc-2", "service", "clinic-2"), "/stats")
            .await
            .body["byStatus"]["started"],
        0
    );
    for refused in [
        t("staff-1", "staff", "clinic-1"),
        t("dr-7", "practitioner", "clinic-1"),
        t("pat-9", "patient", "clinic-1"),
    ] {
        assert_error(&api.get(&refused, "/stats").await, 403, "FORBIDDEN");
    }
    stack.finish(0).await;
}

#[tokio::test]
async fn a_reschedule_within_the_same_second_keeps_the_memberships() {
    // Found by schemathesis: moving the start by milliseconds put and deleted the same
    // membership item in one transaction, which DynamoDB refuses (it answered 500).
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let start = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT10:00:00Z")
        .to_string();
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"], "startTime": start });
    let m = create(&api, &service, "appt-millis", &body).await;
    let id = m["meetingId"].as_str().expect("id");
    let same_second = start.replace(":00Z", ":00.183Z");
    let r = api
        .send(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&service),
            Some(json!({ "startTime": same_second, "durationMinutes": 45 }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["durationMinutes"], 45);
    let listed = api.get(&service, "/users/pat-9/meetings").await.body;
    assert_eq!(
        listed["meetings"].as_array().map(Vec::len),
        Some(1),
        "still listed once"
    );
    stack.finish(0).await;
}

/// The stored Zoom meeting behind `meeting` at the sandbox.
async fn at_zoom(stack: &Stack, meeting: &Value) -> Value {
    let all = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    all["meetings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["id"].as_u64().map(|id| id.to_string()).as_deref()
                == meeting["providerMeetingId"].as_str()
        })
        .cloned()
        .expect("the meeting at Zoom")
}

#[tokio::test]
async fn a_time_zone_zoom_does_not_list_goes_as_an_equivalent_one_and_the_record_keeps_the_callers()
{
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    // Europe/Kyiv (tzdata since 2022) is not in Zoom's list; Europe/Kiev is.
    let mut body = appointment_body();
    body["timezone"] = json!("Europe/Kyiv");
    let made = create(&api, &service, "appt-kyiv", &body).await;
    assert_eq!(made["timezone"], "Europe/Kyiv");
    assert_eq!(at_zoom(&stack, &made).await["timezone"], "Europe/Kiev");
    // A reschedule to another unlisted zone: no equivalent with the same clock, so UTC.
    let id = made["meetingId"].as_str().expect("id");
    let change = json!({ "timezone": "America/Nuuk" });
    let patched = api
        .send(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&service),
            Some(change.to_string()),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["timezone"], "America/Nuuk");
    let zone = at_zoom(&stack, &made).await["timezone"].clone();
    assert!(zone.is_string() && zone != "America/Nuuk", "{zone}");
    // Zoom's meeting.updated naming the zone it was told changes nothing of ours.
    let sent = stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/webhooks/send",
            Some(
                json!({ "event": "meeting.updated", "meetingId": made["providerMeetingId"],
                "target": format!("{}/webhooks/zoom", stack.gateway()) }),
            ),
        )
        .await;
    assert_eq!(sent["status"], 200, "{sent}");
    let read = api.get(&service, &format!("/meetings/{id}")).await;
    assert_eq!(read.body["timezone"], "America/Nuuk");
    stack.finish(0).await;
}

//! Guarantee 2: links are role-specific and fresh.

use serde_json::json;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

async fn created(stack: &Stack, api: &Api, appointment: &str) -> String {
    let token = stack.token("svc-1", "service", "clinic-1");
    let r = api
        .put_appointment(&token, appointment, &appointment_body())
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["meetingId"].as_str().expect("meetingId").to_owned()
}

#[tokio::test]
async fn the_host_gets_the_start_url_and_the_patient_the_join_url() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let id = created(&stack, &api, "appt-links").await;
    let path = format!("/meetings/{id}/link");

    let host = api
        .get(&stack.token("dr-7", "practitioner", "clinic-1"), &path)
        .await;
    assert_eq!(host.status, 200, "{:?}", host.body);
    assert_eq!(host.body["role"], "host");
    let start_url = host.body["url"].as_str().expect("url");
    assert!(
        start_url.contains("/s/") && start_url.contains("zak="),
        "a Zoom start_url"
    );
    assert!(host.body["expiresAt"].is_string());

    let patient = api
        .get(&stack.token("pat-9", "patient", "clinic-1"), &path)
        .await;
    assert_eq!(patient.status, 200);
    assert_eq!(patient.body["role"], "participant");
    let join_url = patient.body["url"].as_str().expect("url");
    assert!(
        join_url.contains("/j/") && !join_url.contains("zak="),
        "a Zoom join_url"
    );
    assert!(patient.body["password"].is_string());
    assert_other_link(
        &patient.body["url"],
        &host.body["url"],
        "join and start links",
    );

    // Explicit roles: the patient can never have the host link.
    let asked = api
        .get(
            &stack.token("pat-9", "patient", "clinic-1"),
            &format!("{path}?role=host"),
        )
        .await;
    assert_error(&asked, 403, "FORBIDDEN");
    let host_as_participant = api
        .get(
            &stack.token("dr-7", "practitioner", "clinic-1"),
            &format!("{path}?role=participant"),
        )
        .await;
    assert_same_link(
        &host_as_participant.body["url"],
        &patient.body["url"],
        "host asking for the join link",
    );
    let staff = stack.token("staff-1", "staff", "clinic-1");
    assert_error(
        &api.get(&staff, &format!("{path}?role=host")).await,
        403,
        "FORBIDDEN",
    );
    let staff_link = api.get(&staff, &format!("{path}?role=participant")).await;
    assert_same_link(
        &staff_link.body["url"],
        &patient.body["url"],
        "staff gets the join link",
    );
    let service = stack.token("svc-1", "service", "clinic-1");
    assert_eq!(
        api.get(&service, &format!("{path}?role=host")).await.body["role"],
        "host"
    );
    assert_error(
        &api.get(
            &stack.token("admin-1", "admin", "clinic-1"),
            &format!("{path}?role=host"),
        )
        .await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &api.get(&service, &format!("{path}?role=owner")).await,
        400,
        "VALIDATION_FAILED",
    );

    // Guarantee 6: every link issued was audit-logged (5 above), without the link itself.
    assert_eq!(stack.log_lines_with(r#""audit":"link_issued""#, 5).await, 5);

    // Not in the meeting, or another org: the meeting does not exist for them.
    for outsider in [
        stack.token("pat-8", "patient", "clinic-1"),
        stack.token("dr-8", "practitioner", "clinic-1"),
        stack.token("pat-9", "patient", "clinic-2"),
        stack.token("svc-2", "service", "clinic-2"),
    ] {
        assert_error(&api.get(&outsider, &path).await, 404, "NOT_FOUND");
        assert_error(
            &api.get(&outsider, &format!("/meetings/{id}")).await,
            404,
            "NOT_FOUND",
        );
        assert_error(
            &api.get(&outsider, "/appointments/appt-links/meeting").await,
            404,
            "NOT_FOUND",
        );
    }
    stack.finish(0).await;
}

#[tokio::test]
async fn the_meeting_resource_never_carries_links_or_passcodes() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let id = created(&stack, &api, "appt-resource").await;
    let token = stack.token("dr-7", "practitioner", "clinic-1");
    let by_id = api.get(&token, &format!("/meetings/{id}")).await;
    let by_subject = api.get(&token, "/appointments/appt-resource/meeting").await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body, by_subject.body);
    let text = by_id.body.to_string();
    for secret in stack.secrets().await {
        assert!(
            !text.contains(&secret),
            "the meeting resource leaks a link or passcode"
        );
    }
    for field in ["url", "joinUrl", "startUrl", "password"] {
        assert!(by_id.body.get(field).is_none(), "{field}");
    }
    assert_eq!(by_id.body["topic"], "Video consultation");
    assert_eq!(by_id.body["status"], "scheduled");
    assert_eq!(by_id.body["subject"]["id"], "appt-resource");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_link_is_refreshed_once_the_stored_start_url_may_be_stale() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    // The clock moves by hours: the tokens must outlive it.
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let host = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let put = lambda_request(
        "PUT",
        "/appointments/appt-fresh/meeting",
        Some(&service),
        Some(&appointment_body()),
    );
    let created = call(&app, Function::CreateMeeting, put).await;
    assert_eq!(created.status, 201);
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    let link =
        |token: &str| lambda_request("GET", &format!("/meetings/{id}/link"), Some(token), None);

    let first = call(&app, Function::GetMeetingLink, link(&host)).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        stack.sandbox_count(GET_OP).await,
        0,
        "a just-created start_url is fresh"
    );

    clock.advance(chrono::Duration::minutes(89));
    let still = call(&app, Function::GetMeetingLink, link(&host)).await;
    assert_same_link(&still.body["url"], &first.body["url"], "89 minutes on");
    assert_eq!(stack.sandbox_count(GET_OP).await, 0);

    clock.advance(chrono::Duration::minutes(2));
    let fresh = call(&app, Function::GetMeetingLink, link(&host)).await;
    assert_eq!(fresh.status, 200);
    assert_other_link(
        &fresh.body["url"],
        &first.body["url"],
        "a new start_url after 90 minutes",
    );
    assert_eq!(stack.sandbox_count(GET_OP).await, 1);
    let expires =
        chrono::DateTime::parse_from_rfc3339(fresh.body["expiresAt"].as_str().expect("expiresAt"))
            .expect("time");
    let now = telemeet::clock::Clock::now(clock.as_ref());
    assert!(expires.with_timezone(&chrono::Utc) - now > chrono::Duration::minutes(110));

    // The refreshed link is stored: asking again costs no provider call.
    let again = call(&app, Function::GetMeetingLink, link(&host)).await;
    assert_same_link(
        &again.body["url"],
        &fresh.body["url"],
        "the refreshed link is stored",
    );
    assert_eq!(stack.sandbox_count(GET_OP).await, 1);

    // The participant link never needs the provider.
    clock.advance(chrono::Duration::hours(5));
    let join = call(&app, Function::GetMeetingLink, link(&patient)).await;
    assert_eq!(join.status, 200);
    assert_eq!(join.body["role"], "participant");
    assert_eq!(stack.sandbox_count(GET_OP).await, 1);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_link_refresh_that_meets_one_not_found_asks_once_more_before_the_meeting_counts_as_gone()
 {
    let (stack, clock, app) = in_process_app().await;
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let host = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let put = lambda_request(
        "PUT",
        "/appointments/appt-odd/meeting",
        Some(&service),
        Some(&appointment_body()),
    );
    let created = call(&app, Function::CreateMeeting, put).await;
    assert_eq!(created.status, 201);
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    let link = || lambda_request("GET", &format!("/meetings/{id}/link"), Some(&host), None);
    let not_found = |times: u32| {
        json!({ "operation": "GET /v2/meetings/{meetingId}", "kind": "status", "status": 404,
            "body": { "code": 3001, "message": "Meeting does not exist: 1." }, "times": times })
    };

    // One odd 404/3001: asked again a second later (on the clock), and the link is issued.
    clock.advance(chrono::Duration::minutes(91));
    stack.fault(not_found(1)).await;
    let waits_before = clock.waits_for(telemeet::clock::Wait::ProviderRetry).len();
    let issued = call(&app, Function::GetMeetingLink, link()).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body["error"]);
    assert_eq!(stack.sandbox_count(GET_OP).await, 2);
    let waited = clock.waits_for(telemeet::clock::Wait::ProviderRetry)[waits_before..].to_vec();
    assert_eq!(waited, [std::time::Duration::from_secs(1)]);

    // Twice in a row it stands: the provider no longer has the meeting.
    clock.advance(chrono::Duration::minutes(91));
    stack.fault(not_found(2)).await;
    let gone = call(&app, Function::GetMeetingLink, link()).await;
    assert_error(&gone, 502, "PROVIDER_REJECTED");
    assert_eq!(stack.sandbox_count(GET_OP).await, 4);
    stack.finish(0).await;
}

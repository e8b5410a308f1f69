//! Budgets (DESIGN.md, "Per-host budget", "Caller budget"): a Zoom host user's creates and
//! updates per UTC day, and new meetings per caller and org. Past a budget nothing is sent
//! to the provider; one host's or org's spent budget never refuses another's.

use serde_json::{Value, json};
use telemeet::App;
use telemeet::clock::Clock;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

const DAILY_MESSAGE: &str = "You have exceeded the daily rate limit (3) of Meeting Create/Update API requests permitted for this particular user. You may resume these requests at GMT 00:00:00.";

async fn put(app: &App, token: &str, appointment: &str, host: &str) -> Reply {
    let mut body = appointment_body();
    body["hostUserId"] = json!(host);
    let req = lambda_request(
        "PUT",
        &format!("/appointments/{appointment}/meeting"),
        Some(token),
        Some(&body),
    );
    call(app, Function::CreateMeeting, req).await
}

async fn org_put(app: &App, token: &str, path: &str, body: &Value) -> Reply {
    let r = call(
        app,
        Function::OrgAdmin,
        lambda_request("PUT", path, Some(token), Some(body)),
    )
    .await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r
}

fn seconds_to_midnight(clock: &dyn Clock) -> u64 {
    let now = clock.now();
    let midnight = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    // Rounded up: waiting that long finds the new day.
    u64::try_from((midnight - now).num_milliseconds())
        .expect("positive")
        .div_ceil(1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_daily_budget_stops_calls_for_that_host_only_and_zooms_own_refusal_counts_the_same()
{
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let admin = day_token(&stack, "adm-3", "admin", "clinic-3");
    let service = day_token(&stack, "svc-3", "service", "clinic-3");
    let connection = stack.zoom_connection(&json!({ "hostDailyBudget": 3 }));
    for email in ["dra@clinic3.example", "drb@clinic3.example"] {
        stack.zoom_user(email).await;
    }
    org_put(&app, &admin, "/org/providers/zoom", &connection).await;
    org_put(
        &app,
        &admin,
        "/org/hosts/dr-a",
        &json!({ "zoomUser": "dra@clinic3.example" }),
    )
    .await;
    org_put(
        &app,
        &admin,
        "/org/hosts/dr-b",
        &json!({ "zoomUser": "drb@clinic3.example" }),
    )
    .await;

    for n in 1..=3 {
        let r = put(&app, &service, &format!("appt-a{n}"), "dr-a").await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let creates = stack.sandbox_count(CREATE_OP).await;
    let fourth = put(&app, &service, "appt-a4", "dr-a").await;
    assert_error(&fourth, 429, "PROVIDER_RATE_LIMITED");
    assert_eq!(
        fourth.header("retry-after"),
        Some(seconds_to_midnight(clock.as_ref()).to_string().as_str()),
        "until 00:00 UTC"
    );
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        creates,
        "no Zoom call"
    );
    let other = put(&app, &service, "appt-b1", "dr-b").await;
    assert_eq!(
        other.status, 201,
        "another host of the org: {:?}",
        other.body
    );

    // Zoom's own per-host refusal: a 429 without Retry-After or X-RateLimit-Type. One call,
    // no retry, and none for that host the rest of the day.
    stack
        .fault(
            json!({ "operation": CREATE_OP, "kind": "status", "status": 429,
                       "body": { "code": 429, "message": DAILY_MESSAGE }, "times": 1 }),
        )
        .await;
    let before = stack.sandbox_count(CREATE_OP).await;
    let refused = put(&app, &service, "appt-b2", "dr-b").await;
    assert_error(&refused, 429, "PROVIDER_RATE_LIMITED");
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        before + 1,
        "exactly one call"
    );
    assert_eq!(
        refused.header("retry-after"),
        Some(seconds_to_midnight(clock.as_ref()).to_string().as_str())
    );
    let after = put(&app, &service, "appt-b3", "dr-b").await;
    assert_error(&after, 429, "PROVIDER_RATE_LIMITED");
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        before + 1,
        "spent until midnight"
    );

    // With a fallback, a spent host's meetings land there instead.
    org_put(
        &app,
        &admin,
        "/org/settings",
        &json!({ "provider": "zoom", "fallbackProvider": "jitsi" }),
    )
    .await;
    let fallen = put(&app, &service, "appt-a5", "dr-a").await;
    assert_eq!(fallen.status, 201, "{:?}", fallen.body);
    assert_eq!(fallen.body["provider"], "jitsi");
    assert_eq!(stack.sandbox_count(CREATE_OP).await, before + 1);

    // A new UTC day: the budget is back.
    clock.advance(chrono::Duration::seconds(
        i64::try_from(seconds_to_midnight(clock.as_ref())).expect("secs"),
    ));
    let next_day = put(&app, &service, "appt-a6", "dr-a").await;
    assert_eq!(
        (next_day.status, next_day.body["provider"].clone()),
        (201, json!("zoom"))
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reschedule_spends_from_the_hosts_daily_budget_too() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app_configured(
            clock.clone(),
            Settings::default(),
            &[("ZOOM_HOST_DAILY_BUDGET", "2")],
        )
        .await
        .expect("app");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let m = put(&app, &service, "appt-r", "dr-7").await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let id = m.body["meetingId"].as_str().expect("id").to_owned();
    let patch = |topic: &str| {
        lambda_request(
            "PATCH",
            &format!("/meetings/{id}"),
            Some(&service),
            Some(&json!({ "topic": topic })),
        )
    };
    let first = call(&app, Function::ManageMeeting, patch("Follow-up")).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = call(&app, Function::ManageMeeting, patch("Again")).await;
    assert_error(&second, 429, "PROVIDER_RATE_LIMITED");
    assert_eq!(
        stack.sandbox_count("PATCH /v2/meetings/{meetingId}").await,
        1
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_past_its_create_budget_gets_429_while_another_org_is_served() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let budgets = "patient=2/3600,user=1000/3600,org=5000/3600";
    let app = stack
        .app_configured(
            clock.clone(),
            Settings::default(),
            &[("CREATE_BUDGETS", budgets)],
        )
        .await
        .expect("app");
    let patient = day_token(&stack, "pat-1", "patient", "clinic-4");
    let room = |conversation: &str, token: &str| {
        lambda_request(
            "PUT",
            &format!("/conversations/{conversation}/meeting"),
            Some(token),
            Some(&json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-1"] })),
        )
    };
    for c in ["conv-1", "conv-2"] {
        let r = call(&app, Function::CreateMeeting, room(c, &patient)).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let creates = stack.sandbox_count(CREATE_OP).await;
    let third = call(&app, Function::CreateMeeting, room("conv-3", &patient)).await;
    assert_error(&third, 429, "RATE_LIMITED");
    let wait: u64 = third
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_eq!(
        stack.sandbox_count(CREATE_OP).await,
        creates,
        "no provider call"
    );
    // A reuse is no new meeting: it spends nothing.
    let reused = call(&app, Function::CreateMeeting, room("conv-1", &patient)).await;
    assert_eq!(reused.status, 200, "{:?}", reused.body);

    // Another org's service caller at the same moment.
    let other = day_token(&stack, "svc-5", "service", "clinic-5");
    let served = put(&app, &other, "appt-5", "dr-7").await;
    assert_eq!(served.status, 201, "{:?}", served.body);

    // The window ends: the patient may create again.
    clock.advance(chrono::Duration::seconds(
        i64::try_from(wait).expect("secs"),
    ));
    let later = call(&app, Function::CreateMeeting, room("conv-3", &patient)).await;
    assert_eq!(later.status, 201, "{:?}", later.body);
    stack.finish(0).await;
}

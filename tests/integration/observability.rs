//! Observability: every request logs one JSON line with its request id, function, route,
//! latency and outcome; every link issued is an audit event; the counts CloudWatch should
//! graph (meetings created, links issued, webhook rejects, provider latency, cleanup counts)
//! are embedded-metric-format lines in the same log; and nothing secret is in any of it
//! (`Stack::finish`).

use serde_json::{Value, json};
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

fn json_lines(stack: &Stack) -> Vec<Value> {
    stack
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The EMF documents for metric `name`.
fn metric<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"].as_str() == Some(name))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_audits_and_metrics_are_logged_as_structured_json() {
    let stack = in_process_stack().await;
    let app = stack
        .app_configured(manual_clock(), Settings::default(), &[])
        .await
        .expect("app");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let start = (chrono::Utc::now() - chrono::Duration::hours(3))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let created = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-obs/meeting",
            Some(&service),
            Some(&json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"], "startTime": start })),
        ),
    )
    .await;
    assert_eq!(created.status, 201);
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    let link = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}/link"), Some(&patient), None),
    )
    .await;
    assert_eq!(link.status, 200);
    let missing = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", "/meetings/mtg_nope", Some(&service), None),
    )
    .await;
    assert_eq!(missing.status, 404);
    let (status, _) = deliver(
        &app,
        delivery(
            &[
                (
                    "x-zm-request-timestamp",
                    chrono::Utc::now().timestamp().to_string(),
                ),
                ("x-zm-signature", format!("v0={}", "0".repeat(64))),
            ],
            r#"{"event":"meeting.started"}"#,
            false,
        ),
    )
    .await;
    assert_eq!(status, 401);
    let summary = telemeet::cleanup::run(
        &app,
        &telemeet::cleanup::CleanupSettings::default(),
        &json!({ "time": (chrono::Utc::now() + chrono::Duration::days(9)).to_rfc3339(), "detail": {} }),
        app.service.clock.instant() + std::time::Duration::from_secs(30),
    )
    .await
    .expect("cleanup");
    assert_eq!(summary["archived"], 1, "{summary}");

    let lines = json_lines(&stack);
    // One line per request: request id, function, route, status, latency, outcome.
    let done: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request done")
        .collect();
    assert_eq!(done.len(), 4, "create, link, the 404, the webhook");
    let mut routes: Vec<&str> = done
        .iter()
        .filter_map(|d| d["span"]["route"].as_str())
        .collect();
    routes.sort_unstable();
    assert_eq!(
        routes,
        [
            "GET /meetings/{meetingId}",
            "GET /meetings/{meetingId}/link",
            "POST /webhooks/zoom",
            "PUT /appointments/{appointmentId}/meeting"
        ]
    );
    for d in &done {
        let span = &d["span"];
        assert!(
            span["requestId"].as_str().is_some_and(|r| !r.is_empty()),
            "{d}"
        );
        assert!(
            span["function"].is_string() && span["route"].is_string(),
            "{d}"
        );
        assert!(
            d["latency_ms"].is_number() && d["status"].is_number(),
            "{d}"
        );
        assert!(
            ["ok", "error"].contains(&d["outcome"].as_str().unwrap_or("")),
            "{d}"
        );
    }
    assert_eq!(
        done.iter().filter(|d| d["outcome"] == "error").count(),
        2,
        "the 404 and the refused webhook"
    );
    // The audit event of the link: who got which role's link to which meeting, in which request.
    let audit: Vec<&Value> = lines
        .iter()
        .filter(|l| l["audit"] == "link_issued")
        .collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (
            &audit[0]["meetingId"],
            &audit[0]["role"],
            &audit[0]["callerId"]
        ),
        (&json!(id), &json!("participant"), &json!("pat-9"))
    );
    assert!(audit[0]["span"]["requestId"].is_string());
    // Metrics, in CloudWatch's embedded metric format.
    let created_m = metric(&lines, "MeetingsCreated");
    assert_eq!(created_m.len(), 1);
    assert_eq!(
        (&created_m[0]["provider"], &created_m[0]["MeetingsCreated"]),
        (&json!("zoom"), &json!(1.0))
    );
    assert_eq!(
        created_m[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "telemeet"
    );
    assert_eq!(metric(&lines, "LinksIssued")[0]["role"], "participant");
    assert_eq!(metric(&lines, "WebhookRejected").len(), 1);
    let latency = metric(&lines, "ProviderLatency");
    assert!(
        latency
            .iter()
            .any(|l| l["provider"] == "zoom" && l["op"] == "create_meeting"),
        "{latency:?}"
    );
    assert!(
        latency
            .iter()
            .all(|l| l["ProviderLatency"].as_f64().is_some_and(|v| v >= 0.0))
    );
    assert_eq!(metric(&lines, "CleanupArchived")[0]["CleanupArchived"], 1.0);
    assert_eq!(
        metric(&lines, "CleanupProviderDeleted")[0]["CleanupProviderDeleted"],
        1.0
    );
    // Names, emails, links and tokens never appear: Stack::finish checks every line.
    stack.finish(0).await;
}

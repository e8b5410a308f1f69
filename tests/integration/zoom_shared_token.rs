//! The Zoom access token is shared by all containers through the table (issue 18, item 4):
//! a cold container reads it instead of paying a grant, one container refreshes it, a
//! refused one is dropped, and each connection has its own (guarantees 4 and 9).

use serde_json::{Value, json};
use std::sync::Arc;
use telemeet::App;
use telemeet::clock::ManualClock;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

/// A stack and a service token of clinic-1.
async fn clinic_stack() -> (Stack, String) {
    let stack = in_process_stack().await;
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    (stack, service)
}

/// A container: an app of its own (its own caches) on the stack's one table.
async fn container(stack: &Stack, clock: Arc<ManualClock>) -> App {
    stack.app(clock, Settings::default()).await.expect("app")
}

async fn create(app: &App, token: &str, appointment: &str) -> Reply {
    let req = lambda_request(
        "PUT",
        &format!("/appointments/{appointment}/meeting"),
        Some(token),
        Some(&appointment_body()),
    );
    let r = call(app, Function::CreateMeeting, req).await;
    assert_eq!(r.status, 201, "{appointment}: {:?}", r.body);
    r
}

/// The table's shared Zoom token records.
async fn zoom_token_records(stack: &Stack) -> Vec<Value> {
    let db = aws_sdk_dynamodb::Client::new(&stack.aws_config().await);
    let found = db
        .scan()
        .table_name(local_stack::TABLE_NAME)
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("TOKEN#zoom#".into()),
        )
        .send()
        .await
        .expect("scan (test only)");
    found
        .items()
        .iter()
        .map(|item| {
            let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            json!({ "pk": s("pk"), "sealed": s("sealed") })
        })
        .collect()
}

#[tokio::test]
async fn a_second_container_makes_no_oauth_call_while_the_first_ones_token_is_valid() {
    let (stack, service) = clinic_stack().await;
    let first = container(&stack, manual_clock()).await;
    create(&first, &service, "appt-first").await;
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 1);
    let second = container(&stack, manual_clock()).await;
    create(&second, &service, "appt-second").await;
    assert_eq!(
        stack.sandbox_count(TOKEN_OP).await,
        1,
        "read from the table"
    );
    let records = zoom_token_records(&stack).await;
    assert_eq!(
        records.len(),
        1,
        "one record for the deployment's connection"
    );
    assert!(records[0]["sealed"].is_string(), "stored sealed");
    stack.finish(0).await;
}

#[tokio::test]
async fn an_expired_shared_token_is_refreshed_once_for_all_containers() {
    let (stack, service) = clinic_stack().await;
    let clock = manual_clock();
    let (a, b) = (
        container(&stack, clock.clone()).await,
        container(&stack, clock.clone()).await,
    );
    create(&a, &service, "appt-a1").await;
    create(&b, &service, "appt-b1").await;
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 1);
    // Past the token's hour: the table's copy is as expired as the containers' own.
    clock.advance(chrono::Duration::minutes(61));
    create(&a, &service, "appt-a2").await;
    create(&b, &service, "appt-b2").await;
    let c = container(&stack, clock.clone()).await;
    create(&c, &service, "appt-c2").await;
    assert_eq!(
        stack.sandbox_count(TOKEN_OP).await,
        2,
        "one refresh for all"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_containers_make_one_grant() {
    let (stack, service) = clinic_stack().await;
    let mut apps = Vec::new();
    for _ in 0..5 {
        apps.push(Arc::new(container(&stack, manual_clock()).await));
    }
    let start = Arc::new(tokio::sync::Barrier::new(apps.len()));
    let tasks: Vec<_> = apps
        .iter()
        .enumerate()
        .map(|(i, app)| {
            let (app, start, service) = (app.clone(), start.clone(), service.clone());
            tokio::spawn(async move {
                start.wait().await;
                create(&app, &service, &format!("appt-cold-{i}"))
                    .await
                    .status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task"), 201);
    }
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 1, "one grant for five");
    stack.finish(0).await;
}

#[tokio::test]
async fn a_refused_token_leaves_the_table_and_is_replaced_once() {
    let (stack, service) = clinic_stack().await;
    let first = container(&stack, manual_clock()).await;
    create(&first, &service, "appt-before").await;
    let before = zoom_token_records(&stack).await;
    // Zoom refuses the shared token (revoked): the container renews it once.
    stack
        .fault(json!({ "operation": CREATE_OP, "kind": "token_expired" }))
        .await;
    let second = container(&stack, manual_clock()).await;
    create(&second, &service, "appt-refused").await;
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 2, "renewed once");
    let after = zoom_token_records(&stack).await;
    assert_eq!(after.len(), 1);
    assert_ne!(after[0]["sealed"], before[0]["sealed"], "replaced");
    // The next cold container reads the replacement, not the refused one.
    let third = container(&stack, manual_clock()).await;
    create(&third, &service, "appt-after").await;
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, 2);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 4);
    stack.finish(0).await;
}

async fn connect_zoom(stack: &Stack, app: &App, org: &str) {
    let admin = stack.token("adm", "admin", org);
    let body = stack.zoom_connection(&json!({ "defaultUser": "me" }));
    let req = lambda_request("PUT", "/org/providers/zoom", Some(&admin), Some(&body));
    let r = call(app, Function::OrgAdmin, req).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn two_orgs_with_their_own_zoom_connections_never_share_a_token() {
    let stack = in_process_stack().await;
    let admin_app = container(&stack, manual_clock()).await;
    // Both orgs bring the same Zoom app, the case where a key per account alone would mix.
    connect_zoom(&stack, &admin_app, "clinic-1").await;
    connect_zoom(&stack, &admin_app, "clinic-2").await;
    let checked = stack.sandbox_count(TOKEN_OP).await;
    let one = day_token(&stack, "svc-1", "service", "clinic-1");
    let two = day_token(&stack, "svc-2", "service", "clinic-2");
    let app = container(&stack, manual_clock()).await;
    create(&app, &one, "appt-org-1").await;
    create(&app, &two, "appt-org-2").await;
    assert_eq!(
        stack.sandbox_count(TOKEN_OP).await,
        checked + 2,
        "a grant per org"
    );
    // Each org's next cold container reads its own org's token only.
    let cold = container(&stack, manual_clock()).await;
    create(&cold, &two, "appt-org-2b").await;
    create(&cold, &one, "appt-org-1b").await;
    assert_eq!(stack.sandbox_count(TOKEN_OP).await, checked + 2);
    let records = zoom_token_records(&stack).await;
    assert_eq!(records.len(), 2, "one record per org connection");
    assert_ne!(records[0]["pk"], records[1]["pk"]);
    stack.finish(0).await;
}

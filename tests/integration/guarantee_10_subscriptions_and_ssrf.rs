//! Guarantee 10, events reach the platform: an org's event subscriptions (`/org/webhooks`),
//! their signing secrets (shown once, kept in Secrets Manager only, rotatable with a day's
//! overlap), and the SSRF guard on their URLs. Handler tests on real `lambda_http`
//! requests against moto, with DNS answers injected.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use telemeet::App;
use telemeet::clock::Clock;
use telemeet::domain::subscription::secret_name;
use telemeet::http::router::Function;
use telemeet::ids::OrgId;
use telemeet::notify::ssrf::{LocalMode, Resolver};
use telemeet::service::Settings;
use telemeet_local::*;

async fn org_call(app: &App, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
    call(
        app,
        Function::OrgAdmin,
        lambda_request(method, path, Some(token), body),
    )
    .await
}

/// DNS answers from a table; other names do not resolve.
struct Dns(Vec<(&'static str, &'static str)>);

#[async_trait]
impl Resolver for Dns {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let found: Vec<SocketAddr> = self
            .0
            .iter()
            .filter(|(h, _)| *h == host)
            .map(|(_, ip)| SocketAddr::new(ip.parse::<IpAddr>().expect("ip"), port))
            .collect();
        if found.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such host",
            ));
        }
        Ok(found)
    }
}

fn dns() -> Arc<Dns> {
    Arc::new(Dns(vec![
        ("hooks.clinic.example", "93.184.216.34"),
        ("inward.clinic.example", "10.1.2.3"),
        ("loop.clinic.example", "127.0.0.1"),
        ("split.clinic.example", "93.184.216.34"),
        ("split.clinic.example", "169.254.169.254"),
    ]))
}

/// An in-process app whose subscription hosts resolve through [`dns`].
async fn app_with_dns(stack: &Stack, clock: Arc<dyn Clock>, local: bool) -> App {
    let settings = Settings {
        events_local_mode: LocalMode(local),
        ..Settings::default()
    };
    let mut app = stack.app(clock, settings).await.expect("app");
    app.service.resolver = dns();
    app
}

/// The secret's JSON as kept in Secrets Manager (moto), `None` when there is none.
async fn stored_secret(stack: &Stack, org: &str, id: &str) -> Option<Value> {
    let org = OrgId::parse(org, "org").expect("org");
    let name = secret_name(local_stack::ORG_SECRETS_PREFIX, &org, id);
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws_config().await);
    let out = sm.get_secret_value().secret_id(name).send().await.ok()?;
    serde_json::from_str(out.secret_string()?).ok()
}

fn subscribe_body(url: &str) -> Value {
    json!({ "url": url, "events": ["meeting.*", "participant.joined"] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_show_the_secret_once_list_without_it_rotate_and_delete() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = app_with_dns(&stack, clock.clone(), false).await;
    let admin = day_token(&stack, "adm-1", "admin", "clinic-1");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let body = subscribe_body("https://hooks.clinic.example/telemeet?k=v");

    let made = org_call(&app, "POST", "/org/webhooks", &admin, Some(&body)).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let id = made.body["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("whsub_") && id.len() == 30, "{id}");
    assert_eq!(
        made.header("location"),
        Some(format!("/org/webhooks/{id}").as_str())
    );
    let secret = made.body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    let mut keys: Vec<&str> = made
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["createdAt", "disabledAt", "events", "id", "secret", "url"]
    );
    assert_eq!(
        made.body["url"],
        "https://hooks.clinic.example/telemeet?k=v"
    );
    assert_eq!(
        made.body["events"],
        json!(["meeting.*", "participant.joined"])
    );
    assert!(made.body["disabledAt"].is_null());
    // Kept in Secrets Manager, exactly the one shown.
    let kept = stored_secret(&stack, "clinic-1", &id).await.expect("kept");
    assert_eq!(kept, json!({ "current": secret }));

    // Listed (by the service too) without any secret.
    let listed = org_call(&app, "GET", "/org/webhooks", &service, None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let all = listed.body["webhooks"].as_array().expect("webhooks");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], id.as_str());
    assert!(all[0].get("secret").is_none());
    assert!(!listed.body.to_string().contains("whsec_"));

    // Another org sees nothing of it and cannot touch it.
    let other = day_token(&stack, "adm-2", "admin", "clinic-2");
    let theirs = org_call(&app, "GET", "/org/webhooks", &other, None).await;
    assert_eq!(theirs.body, json!({ "webhooks": [] }));
    let path = format!("/org/webhooks/{id}");
    let rotate = format!("{path}/rotate");
    for (method, p) in [("DELETE", &path), ("POST", &rotate)] {
        let r = org_call(&app, method, p, &other, None).await;
        assert_error(&r, 404, "NOT_FOUND");
    }
    assert_eq!(stored_secret(&stack, "clinic-1", &id).await, Some(kept));

    // Rotation: a new current, the old one signing beside it for a day.
    let rotated = org_call(&app, "POST", &rotate, &admin, None).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new = rotated.body["secret"].as_str().expect("secret").to_owned();
    assert!(new.starts_with("whsec_") && new != secret);
    assert_eq!(rotated.body["id"], id.as_str());
    let until = rotated.body["previousSecretValidUntil"]
        .as_str()
        .expect("until");
    let until_t = chrono::DateTime::parse_from_rfc3339(until).expect("rfc3339");
    let expected = clock.now() + chrono::Duration::hours(24);
    assert!(
        (until_t.to_utc() - expected).num_seconds().abs() <= 1,
        "{until}"
    );
    let kept = stored_secret(&stack, "clinic-1", &id).await.expect("kept");
    assert_eq!(
        kept,
        json!({ "current": new, "previous": secret, "previousUntil": until })
    );

    // Deleted: the item and the secret; a second DELETE and a rotation find nothing.
    let gone = org_call(&app, "DELETE", &path, &admin, None).await;
    assert_eq!(gone.status, 200, "{:?}", gone.body);
    assert_eq!(gone.body, json!({ "id": id, "deleted": true }));
    assert_eq!(stored_secret(&stack, "clinic-1", &id).await, None);
    let listed = org_call(&app, "GET", "/org/webhooks", &admin, None).await;
    assert_eq!(listed.body, json!({ "webhooks": [] }));
    assert_error(
        &org_call(&app, "DELETE", &path, &admin, None).await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &org_call(&app, "POST", &rotate, &admin, None).await,
        404,
        "NOT_FOUND",
    );
    let bogus = org_call(
        &app,
        "DELETE",
        "/org/webhooks/whsub_NOT-AN-ID",
        &admin,
        None,
    )
    .await;
    assert_eq!(bogus.status, 404, "{:?}", bogus.body);

    // No secret reaches a log line.
    let logs = stack.logs().join("\n");
    assert!(!logs.contains(&secret[6..]) && !logs.contains(&new[6..]));
    assert!(!logs.contains("k=v"), "no URL query string in the logs");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_orgs_service_and_admin_manage_subscriptions_and_bad_events_are_400() {
    let stack = in_process_stack().await;
    let app = app_with_dns(&stack, manual_clock(), false).await;
    let admin = day_token(&stack, "adm-1", "admin", "clinic-1");
    let made = org_call(
        &app,
        "POST",
        "/org/webhooks",
        &admin,
        Some(&subscribe_body("https://hooks.clinic.example/h")),
    )
    .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let id = made.body["id"].as_str().expect("id");
    let body = subscribe_body("https://hooks.clinic.example/other");
    for (sub, role) in [
        ("pat-9", "patient"),
        ("dr-7", "practitioner"),
        ("st-1", "staff"),
    ] {
        let token = day_token(&stack, sub, role, "clinic-1");
        for (method, path, b) in [
            ("POST", "/org/webhooks".to_owned(), Some(&body)),
            ("GET", "/org/webhooks".to_owned(), None),
            ("DELETE", format!("/org/webhooks/{id}"), None),
            ("POST", format!("/org/webhooks/{id}/rotate"), None),
        ] {
            let r = org_call(&app, method, &path, &token, b).await;
            assert_error(&r, 403, "FORBIDDEN");
        }
    }
    for events in [
        json!([]),
        json!(["meting.*"]),
        json!([""]),
        json!("meeting.*"),
        json!(vec!["*"; 21]),
    ] {
        let b = json!({ "url": "https://hooks.clinic.example/h", "events": events });
        let r = org_call(&app, "POST", "/org/webhooks", &admin, Some(&b)).await;
        assert_error(&r, 400, "VALIDATION_FAILED");
        assert_eq!(error_field(&r), "events", "{events}");
    }
    let listed = org_call(&app, "GET", "/org/webhooks", &admin, None).await;
    assert_eq!(listed.body["webhooks"].as_array().map(Vec::len), Some(1));
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_urls_pointing_inward_or_not_https_are_refused_naming_url_and_nothing_is_stored() {
    let stack = in_process_stack().await;
    let app = app_with_dns(&stack, manual_clock(), false).await;
    let admin = day_token(&stack, "adm-1", "admin", "clinic-1");
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/",
        "https://localhost/",
        "https://[::1]/",
        "https://[fd00:ec2::254]/",
        "http://example.com/",
        "http://127.0.0.1:8080/hook",
        "https://inward.clinic.example/hook",
        "https://loop.clinic.example/hook",
        "https://split.clinic.example/hook",
        "https://nowhere.clinic.example/hook",
        "https://user:pw@hooks.clinic.example/hook",
        "not a url",
    ] {
        let r = org_call(
            &app,
            "POST",
            "/org/webhooks",
            &admin,
            Some(&subscribe_body(url)),
        )
        .await;
        assert_error(&r, 400, "VALIDATION_FAILED");
        assert_eq!(error_field(&r), "url", "{url}: {:?}", r.body);
    }
    let listed = org_call(&app, "GET", "/org/webhooks", &admin, None).await;
    assert_eq!(listed.body, json!({ "webhooks": [] }), "nothing stored");
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws_config().await);
    let secrets = sm.list_secrets().send().await.expect("list");
    assert!(
        !secrets
            .secret_list()
            .iter()
            .any(|s| s.name().is_some_and(|n| n.contains("/webhooks/"))),
        "no secret stored"
    );
    // A public name (its DNS answer public) is accepted.
    let ok = subscribe_body("https://hooks.clinic.example:8443/hook");
    let r = org_call(&app, "POST", "/org/webhooks", &admin, Some(&ok)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_local_mode_alone_takes_loopback_http_and_still_refuses_private_addresses() {
    let stack = in_process_stack().await;
    let app = app_with_dns(&stack, manual_clock(), true).await;
    let admin = day_token(&stack, "adm-1", "admin", "clinic-1");
    for url in [
        "http://127.0.0.1:39123/hook",
        "http://localhost:39123/hook",
        "https://loop.clinic.example/hook",
    ] {
        let r = org_call(
            &app,
            "POST",
            "/org/webhooks",
            &admin,
            Some(&subscribe_body(url)),
        )
        .await;
        assert_eq!(r.status, 201, "{url}: {:?}", r.body);
    }
    for url in [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "https://inward.clinic.example/hook",
        "http://hooks.clinic.example/hook",
    ] {
        let r = org_call(
            &app,
            "POST",
            "/org/webhooks",
            &admin,
            Some(&subscribe_body(url)),
        )
        .await;
        assert_error(&r, 400, "VALIDATION_FAILED");
        assert_eq!(error_field(&r), "url", "{url}");
    }
    // The default settings (what every Lambda runs with) are not local.
    assert_eq!(Settings::default().events_local_mode, LocalMode(false));
    stack.finish(0).await;
}

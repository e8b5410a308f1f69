//! The local gateway's own doors (`/local/events/cleanup`, the demo page and its helpers)
//! answer only requests addressed to loopback that no other web site made: a page the
//! developer visits cannot drive them (DNS rebinding, cross-site forms and fetches).

use serde_json::json;
use telemeet_local::*;

#[tokio::test]
async fn the_local_doors_refuse_other_hosts_and_cross_site_requests() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let http = reqwest::Client::new();
    let cleanup = format!("{}/local/events/cleanup", stack.gateway());
    let event = json!({ "version": "0", "id": "doors", "detail-type": "Scheduled Event", "source": "aws.events", "time": chrono::Utc::now().to_rfc3339(), "resources": [], "detail": { "dryRun": true } });
    let send = |headers: &'static [(&'static str, &'static str)]| {
        let mut req = http.post(&cleanup).json(&event);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move { req.send().await.expect("gateway").status().as_u16() }
    };
    assert_eq!(
        send(&[]).await,
        200,
        "loopback, no other site: the cleanup runs"
    );
    for refused in [
        &[("host", "rebound.evil.example")][..],
        &[("origin", "https://evil.example")],
        &[("sec-fetch-site", "cross-site")],
    ] {
        assert_eq!(send(refused).await, 403, "{refused:?}");
    }
    // The demo's token helper likewise, while the production API paths stay as they were.
    let config = format!("{}/local/demo/config", stack.gateway());
    let cross = http
        .get(&config)
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("gateway");
    assert_eq!(cross.status(), 403);
    let api = Api::new(stack.gateway())
        .get(
            &stack.token("svc-1", "service", "clinic-1"),
            "/meetings/mtg_none",
        )
        .await;
    assert_error(&api, 404, "NOT_FOUND");
    stack.finish(0).await;
}

//! The Zoom sandbox checks what it receives against Zoom's published spec: every request
//! telemeet sends conforms (each stack test's `finish` asserts it), and a request that does
//! not is answered 400 the way Zoom answers it.

use serde_json::{Value, json};
use telemeet_local::*;

#[tokio::test]
async fn a_request_violating_zooms_spec_is_answered_400_like_zoom() {
    let stack = Stack::start(Options {
        gateways: 0,
        ..Default::default()
    })
    .await
    .expect("stack");
    let token = stack.zoom_access_token().await;
    let http = reqwest::Client::new();
    let create = |body: Value| {
        http.post(format!("{}/v2/users/me/meetings", stack.sandbox_url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // An 11-character passcode: Zoom allows 10.
    let r = create(json!({ "topic": "t", "type": 2, "start_time": "2030-01-01T10:00:00Z", "duration": 30, "password": "12345678901" }))
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], 300);
    assert_eq!(body["message"], "Validation Failed.");
    assert_eq!(body["errors"][0]["field"], "password");

    let ok = create(json!({ "topic": "t", "type": 2, "start_time": "2030-01-01T10:00:00Z", "duration": 30, "password": "1234567890" }))
        .await
        .expect("answer");
    assert_eq!(ok.status().as_u16(), 201);
    stack.finish(1).await;
}

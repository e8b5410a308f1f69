//! Webhook verifications per second: `cargo bench -p telemeet --bench webhook_verify`.
//! A figure to read, not a pass/fail check (timings belong to benchmarks, not tests).

use serde_json::json;
use std::time::Instant;
use telemeet::secrets::FromSecret;
use telemeet::webhook::{WebhookSecrets, signature, verify};

fn main() {
    let secret = "benchmark-secret-token-0123456789";
    let json = json!({ "secretToken": secret, "previousSecretToken": "older-secret-token" });
    let Some(map) = json.as_object() else { return };
    let Ok(secrets) = WebhookSecrets::from_secret(map) else {
        return;
    };
    let now = chrono::Utc::now();
    let ts = now.timestamp().to_string();
    for size in [512usize, 4096, 65536] {
        let body = format!(
            "{{\"event\":\"meeting.started\",\"pad\":\"{}\"}}",
            "x".repeat(size)
        );
        let mut headers = http::HeaderMap::new();
        let (Ok(t), Ok(s)) = (ts.parse(), signature(secret, &ts, body.as_bytes()).parse()) else {
            return;
        };
        headers.insert("x-zm-request-timestamp", t);
        headers.insert("x-zm-signature", s);
        let rounds = 20_000_000 / (size + 1000);
        let started = Instant::now();
        let mut ok = 0usize;
        for _ in 0..rounds {
            ok += usize::from(
                verify(
                    &secrets,
                    &headers,
                    std::hint::black_box(body.as_bytes()),
                    now,
                )
                .is_ok(),
            );
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(ok, rounds);
        println!(
            "webhook verify, {:>6}-byte body: {:>9.0} verifications/s ({:.2} µs each)",
            body.len(),
            rounds as f64 / elapsed,
            elapsed * 1e6 / rounds as f64
        );
    }
}

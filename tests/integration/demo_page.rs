//! The local demo page at `/`, clicked through in a real browser (Debian's chromium, driven by
//! playwright-core): practitioner and patient panes show the same meetingId and different
//! links, follow the status Zoom's signed webhooks set, and a chat call lands both in the same
//! room. Screenshots go to target/demo/.

use telemeet_local::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_shows_one_meeting_with_two_links_in_a_browser() {
    let root = local_stack::repo_root();
    let script = root.join("tests/browser/demo.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "playwright-core missing: `npm ci` in tests/browser (the README test command does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).is_file(),
        "{chromium} missing: install Debian's chromium (the README test command does)"
    );
    let shots = root.join("target/demo");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let stack = Stack::start(Options::default()).await.expect("stack");
    let page = format!("{}/", stack.gateway());
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&page)
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["ok"], true);
    for shot in ["demo-appointment.png", "demo-conversation.png"] {
        let size = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
    stack.finish(0).await;
}

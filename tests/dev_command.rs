//! The README's dev command: `local-stack` serves the API and the curl example it prints
//! answers 201.

use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_dev_command_serves_the_api_and_its_curl_example_answers_201() {
    let bin =
        local_stack::sibling_binary("local-stack").expect("local-stack is built with the tests");
    let mut child = tokio::process::Command::new(bin)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("local-stack starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let curl = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("curl ") && line.contains("-X PUT") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the banner within a minute")
    .expect("a curl example");
    // Keep draining the stack's output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let run = || {
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&curl)
            .output()
    };
    let first = run().await.expect("curl runs");
    let head = String::from_utf8_lossy(&first.stdout);
    assert!(
        head.starts_with("HTTP/1.1 201"),
        "{}",
        head.lines().next().unwrap_or("")
    );
    let second = run().await.expect("curl runs");
    assert!(String::from_utf8_lossy(&second.stdout).starts_with("HTTP/1.1 200"));

    // Ctrl-C stops the stack and everything it started.
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("local-stack exits on Ctrl-C")
        .expect("status");
    assert!(status.success());
}

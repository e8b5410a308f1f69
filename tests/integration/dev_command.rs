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
    // Keep reading the stack's output (so it never blocks on a full pipe) for the log check.
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = output.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });

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

    // The banner shows the tokens on purpose; the gateway's log lines never carry them.
    let token = curl
        .split("Bearer ")
        .nth(1)
        .and_then(|t| t.split('\'').next())
        .expect("a token in the example");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logged = output.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let gateway: Vec<&String> = logged
        .iter()
        .filter(|l| l.starts_with("[gateway"))
        .collect();
    assert!(
        gateway.iter().any(|l| l.contains("request done")),
        "gateway lines are shown"
    );
    assert!(
        !gateway.iter().any(|l| l.contains(token)),
        "no token in a log line"
    );

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

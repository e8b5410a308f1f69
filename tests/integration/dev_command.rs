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
    // The banner: clinic-1's examples first, then clinic-2's (its own Zoom account), ending with
    // where clinic-2's Zoom app posts webhooks.
    let banner = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut banner = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let last = line.contains("/webhooks/zoom/clinic-2");
            banner.push(line);
            if last {
                return Some(banner);
            }
        }
        None
    })
    .await
    .expect("the banner within a minute")
    .expect("the banner with both orgs' examples");
    let example = |needle: &str| {
        banner
            .iter()
            .find(|l| l.starts_with("curl ") && l.contains("-X PUT") && l.contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("a curl example for {needle}"))
    };
    let curl = example("/appointments/appt-123/meeting");
    let clinic_2 = example("/appointments/appt-456/meeting");
    for route in [
        "/org/providers",
        "/org/hosts/",
        "/org/settings",
        "/org/webhooks",
    ] {
        assert!(
            banner
                .iter()
                .any(|l| l.starts_with("curl ") && l.contains(route)),
            "a curl example for {route}"
        );
    }
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

    // clinic-2's example creates its meeting on clinic-2's own Zoom account.
    let made = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&clinic_2)
        .output()
        .await
        .expect("curl runs");
    let head = String::from_utf8_lossy(&made.stdout);
    assert!(
        head.starts_with("HTTP/1.1 201"),
        "clinic-2: {}",
        head.lines().next().unwrap_or("")
    );
    let sandbox = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("Zoom sandbox"))
        .map(str::trim)
        .expect("the Zoom sandbox's URL in the banner")
        .to_owned();
    let accounts: serde_json::Value = reqwest::get(format!("{sandbox}/__sandbox/accounts"))
        .await
        .expect("the sandbox answers")
        .json()
        .await
        .expect("JSON");
    let dr7: Vec<&str> = accounts["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["users"].as_array().into_iter().flatten())
        .filter(|u| u["email"] == "dr7@clinic2.example")
        .filter_map(|u| u["id"].as_str())
        .collect();
    let calls: serde_json::Value = reqwest::get(format!("{sandbox}/__sandbox/calls"))
        .await
        .expect("the sandbox answers")
        .json()
        .await
        .expect("JSON");
    assert!(
        calls["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["operation"] == "POST /v2/users/{userId}/meetings"
                && r["status"] == 201
                && r["userId"].as_str().is_some_and(|u| dr7.contains(&u))),
        "the meeting was created for clinic-2's own Zoom user: {dr7:?}"
    );

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
    // No client secret and no webhook secret token anywhere in what it printed.
    let issued: serde_json::Value = reqwest::get(format!("{sandbox}/__sandbox/issued"))
        .await
        .expect("the sandbox answers")
        .json()
        .await
        .expect("JSON");
    let secrets: Vec<&str> = ["clientSecrets", "webhookSecrets"]
        .iter()
        .flat_map(|k| issued[*k].as_array().into_iter().flatten())
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert!(secrets.len() >= 2, "the sandbox lists the client secrets");
    let printed: Vec<&String> = banner.iter().chain(logged.iter()).collect();
    for line in &printed {
        assert!(
            !secrets.iter().any(|s| line.contains(s)),
            "a client or webhook secret was printed"
        );
        assert!(
            !line.contains("whtok-") && !line.contains("csecret"),
            "clinic-2's connection secrets were printed"
        );
    }

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

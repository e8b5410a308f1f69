//! `local-stack`: the dev command. Starts moto, the Zoom and Zoho sandboxes and the local
//! gateway on loopback, seeds the secrets and two orgs (clinic-1 on the deployment's Zoom
//! account, clinic-2 on its own), prints ready-to-paste curl examples with fresh dev tokens, and
//! runs until Ctrl-C. `PORT` (default 3000) is the gateway's port; 0 picks a free one.

use local_stack::{Options, Stack};
use serde_json::{Value, json};
use std::process::ExitCode;

/// clinic-2's own Zoom account: dr-7's Zoom user, and one more for the host-directory example.
const CLINIC_2_DR7: &str = "dr7@clinic2.example";
const CLINIC_2_DR8: &str = "dr8@clinic2.example";

#[tokio::main]
async fn main() -> ExitCode {
    let port = match std::env::var("PORT").map(|p| p.parse::<u16>()) {
        Err(_) => 3000,
        Ok(Ok(p)) => p,
        Ok(Err(_)) => {
            eprintln!("PORT must be a port number");
            return ExitCode::FAILURE;
        }
    };
    let stack = match Stack::start(Options {
        gateways: 1,
        gateway_port: port,
        echo_logs: true,
    })
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("local stack failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let clinic_2 = match seed_clinic_2(&stack).await {
        Ok(account) => account,
        Err(e) => {
            eprintln!("seeding clinic-2 failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", banner(&stack));
    println!("{}", banner_clinic_2(&stack, &clinic_2));
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

fn banner(stack: &Stack) -> String {
    let api = stack.gateway();
    let service = stack.token("svc-1", "service", "clinic-1");
    let host = stack.token("dr-7", "practitioner", "clinic-1");
    let patient = stack.token("pat-9", "patient", "clinic-1");
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00Z");
    let body = format!(
        r#"{{"hostUserId":"dr-7","participantUserIds":["pat-9"],"startTime":"{start}","durationMinutes":30,"timezone":"Europe/Berlin"}}"#
    );
    [
        String::new(),
        "telemeet local stack is up (Ctrl-C stops it)".to_owned(),
        format!("  API           {api}"),
        format!("  Demo page     {api}/   (practitioner and patient side by side)"),
        format!("  moto          {}", stack.moto_url),
        format!("  Zoom sandbox  {}", stack.sandbox_url),
        format!("  Zoho sandbox  {}", stack.zoho_url),
        "Dev tokens (org clinic-1, valid 1 hour): service svc-1, practitioner dr-7, patient pat-9.".to_owned(),
        String::new(),
        "Create the meeting for appointment appt-123 (201, then 200 on repeat):".to_owned(),
        format!(
            "curl -sS -i -X PUT {api}/appointments/appt-123/meeting -H 'Authorization: Bearer {service}' -H 'Content-Type: application/json' -d '{body}'"
        ),
        String::new(),
        "The practitioner's host link, then the patient's join link (put in the meetingId from above):".to_owned(),
        format!("curl -sS '{api}/meetings/MEETING_ID/link' -H 'Authorization: Bearer {host}'"),
        format!("curl -sS '{api}/meetings/MEETING_ID/link' -H 'Authorization: Bearer {patient}'"),
        String::new(),
        "A chat call on Zoho (seed 000): the patient calls, the practitioner's call joins the same room:".to_owned(),
        format!(
            r#"curl -sS -i -X PUT {api}/conversations/chat-1/meeting -H 'Authorization: Bearer {patient}' -H 'Content-Type: application/json' -d '{{"hostUserId":"dr-7","participantUserIds":["pat-9"],"provider":"zoho"}}'"#
        ),
    ]
    .join("\n")
}

/// clinic-2 brings its own Zoom account: made at the sandbox, connected through the API
/// (`PUT /org/providers/zoom`, verified with a token grant) and dr-7 mapped to its own Zoom user.
/// Answers the account's id (not a secret); the connection body's secrets are never printed.
async fn seed_clinic_2(stack: &Stack) -> Result<String, String> {
    let connection = stack.zoom_account(&[CLINIC_2_DR7, CLINIC_2_DR8]).await;
    let service = stack.token("svc-2", "service", "clinic-2");
    call(stack, "/org/providers/zoom", &service, &connection).await?;
    call(
        stack,
        "/org/hosts/dr-7",
        &service,
        &json!({ "zoomUser": CLINIC_2_DR7 }),
    )
    .await?;
    Ok(connection["accountId"].as_str().unwrap_or("-").to_owned())
}

/// A PUT through the gateway; an error names the status and error code only.
async fn call(stack: &Stack, path: &str, token: &str, body: &Value) -> Result<(), String> {
    let r = reqwest::Client::new()
        .put(format!("{}{path}", stack.gateway()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("PUT {path}: {e}"))?;
    let status = r.status();
    if status.is_success() {
        return Ok(());
    }
    let v: Value = r.json().await.unwrap_or(Value::Null);
    Err(format!("PUT {path}: {status} {}", v["error"]["code"]))
}

fn banner_clinic_2(stack: &Stack, account: &str) -> String {
    let api = stack.gateway();
    let service = stack.token("svc-2", "service", "clinic-2");
    let host = stack.token("dr-7", "practitioner", "clinic-2");
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT11:00:00Z");
    let body = format!(
        r#"{{"hostUserId":"dr-7","participantUserIds":["pat-3"],"startTime":"{start}","durationMinutes":30,"timezone":"Europe/Berlin"}}"#
    );
    let auth = format!("-H 'Authorization: Bearer {service}'");
    let json = "-H 'Content-Type: application/json'";
    [
        String::new(),
        format!(
            "Org clinic-2 has its own Zoom account ({account}, connected with PUT /org/providers/zoom; its secrets are in Secrets Manager, never shown) and dr-7 hosts as {CLINIC_2_DR7}."
        ),
        "Dev tokens (org clinic-2, valid 1 hour): service svc-2, practitioner dr-7.".to_owned(),
        String::new(),
        "clinic-2's provider connections (no secrets), its host directory and its settings:".to_owned(),
        format!("curl -sS {api}/org/providers {auth}"),
        format!(
            r#"curl -sS -X PUT {api}/org/hosts/dr-8 {auth} {json} -d '{{"zoomUser":"{CLINIC_2_DR8}"}}'"#
        ),
        format!("curl -sS {api}/org/hosts/dr-7 {auth}"),
        format!("curl -sS {api}/org/hosts {auth}"),
        format!(
            r#"curl -sS -X PUT {api}/org/settings {auth} {json} -d '{{"provider":"zoom","fallbackProvider":"jitsi","conversationReuseSeconds":900}}'"#
        ),
        format!("curl -sS {api}/org/settings {auth}"),
        String::new(),
        "clinic-2's event subscriptions (the local gateway alone takes loopback http receivers; the answer shows the whsec_ signing secret this once):".to_owned(),
        format!(
            r#"curl -sS -i -X POST {api}/org/webhooks {auth} {json} -d '{{"url":"http://127.0.0.1:9000/events","events":["meeting.*","participant.*"]}}'"#
        ),
        format!("curl -sS {api}/org/webhooks {auth}"),
        String::new(),
        format!(
            "Create clinic-2's meeting for appointment appt-456 (201; on clinic-2's account, hosted by {CLINIC_2_DR7}), then dr-7's host link:"
        ),
        format!("curl -sS -i -X PUT {api}/appointments/appt-456/meeting {auth} {json} -d '{body}'"),
        format!("curl -sS '{api}/meetings/MEETING_ID/link' -H 'Authorization: Bearer {host}'"),
        String::new(),
        format!(
            "clinic-2's Zoom app posts its webhooks to {api}/webhooks/zoom/clinic-2 (checked with clinic-2's own webhookSecretToken); the deployment's account posts to {api}{}.",
            telemeet::http::webhook::PATH
        ),
    ]
    .join("\n")
}

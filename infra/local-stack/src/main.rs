//! `local-stack`: the dev command. Starts moto, the Zoom and Zoho sandboxes and the local
//! gateway on loopback, seeds the secrets, prints ready-to-paste curl examples with fresh dev
//! tokens, and runs until Ctrl-C. `PORT` (default 3000) is the gateway's port; 0 picks a free one.

use local_stack::{Options, Stack};
use std::process::ExitCode;

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
    println!("{}", banner(&stack));
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

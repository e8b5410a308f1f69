//! Guarantee 6: no PHI leaves by default. The people in a visit are named in their tokens
//! (`name`, `email`) and may be named in request bodies and in Zoom's own events; none of it
//! reaches a provider, a link or a log line. Topics are neutral unless one is given.

use base64::Engine;
use serde_json::json;
use telemeet_local::*;

const NAMES: [&str; 5] = [
    "Erika Mustermann",
    "erika.mustermann@example.org",
    "Hans Maier",
    "hans.maier@clinic.example",
    "Front Desk Anna",
];

/// A caller token carrying the person's name and email, as identity providers issue them.
fn named(stack: &Stack, sub: &str, role: &str, name: &str, email: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    stack.sign(
        Signer::Hs256,
        json!({
            "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE, "sub": sub, "role": role,
            "org": "clinic-1", "name": name, "email": email, "iat": now, "exp": now + 3600,
        }),
    )
}

#[track_caller]
fn assert_names_no_one(what: &str, text: &str) {
    for name in NAMES {
        assert!(!text.contains(name), "{what} names someone ({name:?})");
    }
}

/// The claims of a Jitsi link's JWT, as text.
fn jwt_claims(url: &str) -> String {
    let token = url
        .split("jwt=")
        .nth(1)
        .expect("a Jitsi link carries a jwt");
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    String::from_utf8(bytes).expect("UTF-8 claims")
}

#[tokio::test]
async fn a_patients_name_never_reaches_a_provider_a_link_or_a_log() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let patient = named(&stack, "pat-9", "patient", NAMES[0], NAMES[1]);
    let doctor = named(&stack, "dr-7", "practitioner", NAMES[2], NAMES[3]);
    let desk = named(&stack, "staff-1", "staff", NAMES[4], "desk@clinic.example");
    let mut meetings = Vec::new();
    for provider in ["zoom", "jitsi", "zoho"] {
        let mut body = appointment_body();
        body["provider"] = json!(provider);
        // Unknown fields are ignored, and never passed on.
        body["patientName"] = json!(NAMES[0]);
        body["patientEmail"] = json!(NAMES[1]);
        let r = api
            .put_appointment(&doctor, &format!("appt-phi-{provider}"), &body)
            .await;
        assert_eq!(r.status, 201, "{provider}: {:?}", r.body);
        assert_eq!(r.body["topic"], "Video consultation", "a neutral topic");
        meetings.push(r.body);
    }
    // The patient starts a chat call; the front desk reads the room.
    let conv = api
        .send(
            "PUT",
            "/conversations/conv-phi/meeting",
            Some(&patient),
            Some(json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] }).to_string()),
        )
        .await;
    assert_eq!(conv.status, 201, "{:?}", conv.body);
    meetings.push(conv.body);
    for m in &meetings {
        let id = m["meetingId"].as_str().expect("id");
        assert_names_no_one("the meeting resource", &m.to_string());
        for token in [&patient, &doctor, &desk] {
            let link = api.get(token, &format!("/meetings/{id}/link")).await;
            assert_eq!(link.status, 200, "{:?}", link.body);
            let url = link.body["url"].as_str().expect("url");
            assert_names_no_one("a link", url);
            if m["provider"] == "jitsi" {
                assert_names_no_one("a Jitsi token", &jwt_claims(url));
            }
        }
    }
    // Zoom's events name the participant; the event is applied, the name stays behind.
    let zoom_meeting = meetings[0]["providerMeetingId"].clone();
    let sent = stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/webhooks/send",
            Some(json!({
                "event": "meeting.participant_joined", "meetingId": zoom_meeting,
                "target": format!("{}/webhooks/zoom", stack.gateway()),
                "participant": { "user_name": NAMES[0], "email": NAMES[1] },
            })),
        )
        .await;
    assert_eq!(sent["status"], 200, "{sent}");
    assert_eq!(sent["body"]["status"], "applied", "{sent}");

    for (provider, received) in [
        (
            "Zoom",
            stack
                .sandbox(reqwest::Method::GET, "/__sandbox/received", None)
                .await,
        ),
        (
            "Zoho",
            stack
                .zoho(reqwest::Method::GET, "/__sandbox/received", None)
                .await,
        ),
    ] {
        let requests = received["requests"].as_array().expect("requests");
        assert!(!requests.is_empty(), "{provider} was called");
        for r in requests {
            assert_names_no_one(&format!("a request to {provider}"), &r.to_string());
        }
    }
    let stored = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    assert_names_no_one("a Zoom meeting", &stored.to_string());
    let logs = stack.logs();
    assert!(
        logs.iter().any(|l| l.contains("link issued")),
        "the links were audit-logged"
    );
    for line in &logs {
        assert_names_no_one("a log line", line);
    }
    stack.finish(0).await;
}

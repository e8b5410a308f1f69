//! openapi.yaml is the contract clients are generated from: it documents exactly the routes
//! the router serves, and schemathesis (PyPI, in `.venv-fuzz`) fuzzes every operation
//! through the local gateway with a valid token, a forged one and none, finding no server
//! error, no undocumented status code and no response that breaks the spec.

use serde_json::Value;
use telemeet::http::router::ROUTES;
use telemeet_local::*;

const SPEC: &str = include_str!("../../openapi.yaml");

#[test]
fn the_spec_documents_every_route_and_only_those() {
    let doc: yaml_serde::Value = yaml_serde::from_str(SPEC).expect("openapi.yaml parses");
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_mapping()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let path = path.as_str().unwrap_or("").to_owned();
            item.as_mapping()
                .into_iter()
                .flatten()
                .filter_map(|(method, _)| method.as_str())
                .filter(|m| ["get", "put", "post", "patch", "delete"].contains(m))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut served: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
}

/// Runs schemathesis against the gateway; its summary goes to the test's output.
fn schemathesis(gateway: &str, header: Option<&str>, extra: &[&str]) -> (bool, String) {
    let root = local_stack::repo_root();
    let exe = root.join(".venv-fuzz/bin/schemathesis");
    assert!(
        exe.is_file(),
        "{} missing: run `bash infra/fuzz-venv.sh` (the README test command does)",
        exe.display()
    );
    let mut cmd = std::process::Command::new(exe);
    cmd.current_dir(&root)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1")
        .args(["--config-file", "infra/schemathesis.toml"])
        .args(["run", "openapi.yaml", "--url", gateway])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            // One worker: schemathesis 4.32's coverage phase can crash inside Python's AST
            // code when two threads build patterns at once (an error of the tool, not a
            // finding).
            "--workers",
            "1",
            "--max-examples",
            "40",
            "--seed",
            "20261121",
            "--suppress-health-check",
            "all",
        ])
        .args(extra);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd.output().expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_with_a_valid_a_forged_or_no_token() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let gateway = stack.gateway().to_owned();
    let token = stack.token("svc-fuzz", "service", "clinic-1");
    let forged = stack.sign(
        Signer::WrongHs256,
        serde_json::json!({ "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE, "sub": "svc-fuzz", "role": "service", "org": "clinic-1", "exp": chrono::Utc::now().timestamp() + 3600 }),
    );
    let runs = [
        (
            "valid service token",
            Some(format!("Authorization: Bearer {token}")),
        ),
        (
            "forged token",
            Some(format!("Authorization: Bearer {forged}")),
        ),
        ("no token", None),
    ];
    for (what, header) in runs {
        let (ok, text) = tokio::task::spawn_blocking({
            let gateway = gateway.clone();
            move || schemathesis(&gateway, header.as_deref(), &[])
        })
        .await
        .expect("schemathesis task");
        // The summary, for the README and the CI log (no tokens: schemathesis prints none
        // unless a failure reproduces, and then the leak check below would say so).
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("passed")
                    || l.contains("failed")
                    || l.contains("Operations")
                    || l.contains("Test cases")
                    || l.contains("Failures")
            })
            .collect();
        println!("schemathesis, {what}:\n{}", summary.join("\n"));
        if !ok {
            // The gateway's own account of server errors (causes only, never secrets).
            let errors: Vec<String> = stack
                .logs()
                .into_iter()
                .filter(|l| l.contains(r#""level":"ERROR""#))
                .collect();
            panic!(
                "schemathesis found failures with {what}:\n{text}\ngateway errors:\n{}",
                errors.join("\n")
            );
        }
    }
    let stats: Value = Api::new(&gateway).get(&token, "/stats").await.body;
    println!("meetings the fuzzing made: {}", stats["byStatus"]);
    stack.finish(0).await;
}

//! template.yaml grants each function exactly what its code uses. Every function runs its
//! whole repertoire (every route, every provider, the failure paths) in-process with AWS SDK
//! clients that record each call as the IAM action it needs; the recording must equal the
//! function's policy in the template: nothing missing (AccessDenied in production), nothing
//! extra (least privilege). The event functions' stream and queue grants are what their code
//! calls plus what their event source mappings do with their roles. Also: no Scan anywhere,
//! TTL on the attribute the code writes, PITR on, and the local table equal to the template's.

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation as ddb;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use telemeet::App;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

use crate::guarantee_10_events_reach_the_platform::{Receiver, subscribe};

/// Every AWS call an App makes, as the IAM action it needs (`dynamodb:GetItem`,
/// `dynamodb:Query@due-index`), the secret it reads (`secret:<id>`) or the queue it uses
/// (`queue:sqs:SendMessage <queue URL>`).
#[derive(Debug, Default)]
struct Recorder(Mutex<BTreeSet<String>>);

impl Recorder {
    fn add(&self, what: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(what);
    }

    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Debug, Clone)]
struct Recording(Arc<Recorder>);

impl Intercept for Recording {
    fn name(&self) -> &'static str {
        "iam-action-recorder"
    }

    fn read_before_execution(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let input = ctx.input();
        let action = |a: &str| format!("dynamodb:{a}");
        let mut actions = Vec::new();
        if input.downcast_ref::<ddb::get_item::GetItemInput>().is_some() {
            actions.push(action("GetItem"));
        } else if input.downcast_ref::<ddb::put_item::PutItemInput>().is_some() {
            actions.push(action("PutItem"));
        } else if input.downcast_ref::<ddb::update_item::UpdateItemInput>().is_some() {
            actions.push(action("UpdateItem"));
        } else if input.downcast_ref::<ddb::delete_item::DeleteItemInput>().is_some() {
            actions.push(action("DeleteItem"));
        } else if input
            .downcast_ref::<ddb::batch_get_item::BatchGetItemInput>()
            .is_some()
        {
            actions.push(action("BatchGetItem"));
        } else if let Some(q) = input.downcast_ref::<ddb::query::QueryInput>() {
            actions.push(match q.index_name() {
                Some(index) => format!("dynamodb:Query@{index}"),
                None => action("Query"),
            });
        } else if input.downcast_ref::<ddb::scan::ScanInput>().is_some() {
            actions.push(action("Scan"));
        } else if let Some(t) =
            input.downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>()
        {
            // A transaction needs the per-item action of each of its parts.
            for item in t.transact_items() {
                if item.put().is_some() {
                    actions.push(action("PutItem"));
                }
                if item.update().is_some() {
                    actions.push(action("UpdateItem"));
                }
                if item.delete().is_some() {
                    actions.push(action("DeleteItem"));
                }
                if item.condition_check().is_some() {
                    actions.push(action("ConditionCheckItem"));
                }
            }
        } else if let Some(g) = input.downcast_ref::<
            aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput,
        >() {
            let id = g.secret_id().unwrap_or("?");
            actions.push(match id.strip_prefix(local_stack::ORG_SECRETS_PREFIX) {
                Some(name) => org_secret(name, "GetSecretValue"),
                None => format!("secret:{id}"),
            });
        } else if let Some(name) = org_secret_write(ctx) {
            actions.push(name);
        } else if let Some((action, url)) = queue_call(ctx) {
            actions.push(format!("queue:{action} {url}"));
        } else {
            actions.push("unrecognised AWS call".to_owned());
        }
        for a in actions {
            self.0.add(a);
        }
        for (action, pattern) in leading_key_patterns(ctx) {
            self.0.add(format!("key:dynamodb:{action} {pattern}"));
        }
        Ok(())
    }
}

/// The `dynamodb:LeadingKeys` pattern a partition key value needs: its kind up to the
/// first `#` plus `*` (`MTG#mtg_1` → `MTG#*`), or the whole value when it has no `#`.
fn key_pattern(pk: &aws_sdk_dynamodb::types::AttributeValue) -> String {
    let pk = pk.as_s().map(String::as_str).unwrap_or("?");
    match pk.split_once('#') {
        Some((kind, _)) => format!("{kind}#*"),
        None => pk.to_owned(),
    }
}

/// Each table call as `(action, partition key pattern)` for every item it touches (the
/// grain of `dynamodb:LeadingKeys`). Index queries are not limited by it (their statement
/// names the index): none.
fn leading_key_patterns(
    ctx: &BeforeSerializationInterceptorContextRef<'_>,
) -> Vec<(&'static str, String)> {
    use aws_sdk_dynamodb::types::AttributeValue;
    type Item = std::collections::HashMap<String, AttributeValue>;
    let input = ctx.input();
    let of = |action: &'static str, m: Option<&Item>| {
        m.and_then(|m| m.get("pk"))
            .map(|pk| (action, key_pattern(pk)))
            .into_iter()
            .collect::<Vec<_>>()
    };
    if let Some(g) = input.downcast_ref::<ddb::get_item::GetItemInput>() {
        of("GetItem", g.key())
    } else if let Some(p) = input.downcast_ref::<ddb::put_item::PutItemInput>() {
        of("PutItem", p.item())
    } else if let Some(u) = input.downcast_ref::<ddb::update_item::UpdateItemInput>() {
        of("UpdateItem", u.key())
    } else if let Some(d) = input.downcast_ref::<ddb::delete_item::DeleteItemInput>() {
        of("DeleteItem", d.key())
    } else if let Some(b) = input.downcast_ref::<ddb::batch_get_item::BatchGetItemInput>() {
        b.request_items()
            .into_iter()
            .flat_map(|m| m.values())
            .flat_map(|k| k.keys())
            .filter_map(|k| k.get("pk").map(|pk| ("BatchGetItem", key_pattern(pk))))
            .collect()
    } else if let Some(q) = input.downcast_ref::<ddb::query::QueryInput>() {
        if q.index_name().is_some() {
            return Vec::new();
        }
        // `pk = :x`: the value bound to the partition key.
        let expr = q.key_condition_expression().unwrap_or("");
        let name = expr
            .split_once("pk = ")
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(""))
            .unwrap_or("");
        q.expression_attribute_values()
            .and_then(|v| v.get(name))
            .map(|pk| ("Query", key_pattern(pk)))
            .into_iter()
            .collect()
    } else if let Some(t) =
        input.downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>()
    {
        t.transact_items()
            .iter()
            .filter_map(|i| {
                let (action, key) = if let Some(p) = i.put() {
                    ("PutItem", p.item().get("pk"))
                } else if let Some(u) = i.update() {
                    ("UpdateItem", u.key().get("pk"))
                } else if let Some(d) = i.delete() {
                    ("DeleteItem", d.key().get("pk"))
                } else {
                    ("ConditionCheckItem", i.condition_check()?.key().get("pk"))
                };
                key.map(|pk| (action, key_pattern(pk)))
            })
            .collect()
    } else {
        Vec::new()
    }
}

/// An action on an org's secret, `name` its name after the orgs' prefix: a subscription's
/// signing secret (`{org}/webhooks/{id}`, the template's `…/orgs/*/webhooks/*` statements)
/// or a provider connection (`…/orgs/*`).
fn org_secret(name: &str, action: &str) -> String {
    match name.split_once("/webhooks/") {
        Some(_) => format!("webhooksecret:secretsmanager:{action}"),
        None => format!("orgsecret:secretsmanager:{action}"),
    }
}

/// A write of an org's connection secret, under the org prefix (else not one we know).
fn org_secret_write(ctx: &BeforeSerializationInterceptorContextRef<'_>) -> Option<String> {
    use aws_sdk_secretsmanager::operation as sm;
    let input = ctx.input();
    let (action, name) =
        if let Some(c) = input.downcast_ref::<sm::create_secret::CreateSecretInput>() {
            ("CreateSecret", c.name())
        } else if let Some(p) = input.downcast_ref::<sm::update_secret::UpdateSecretInput>() {
            ("UpdateSecret", p.secret_id())
        } else if let Some(d) = input.downcast_ref::<sm::delete_secret::DeleteSecretInput>() {
            ("DeleteSecret", d.secret_id())
        } else {
            return None;
        };
    Some(
        match name.and_then(|n| n.strip_prefix(local_stack::ORG_SECRETS_PREFIX)) {
            Some(name) => org_secret(name, action),
            None => "unrecognised AWS call".to_owned(),
        },
    )
}

/// An SQS call as the IAM action it needs and the queue URL it names (the batch calls need
/// their single-message action).
fn queue_call(
    ctx: &BeforeSerializationInterceptorContextRef<'_>,
) -> Option<(&'static str, String)> {
    use aws_sdk_sqs::operation as sqs;
    let input = ctx.input();
    let (action, url) = if let Some(i) = input.downcast_ref::<sqs::send_message::SendMessageInput>()
    {
        ("sqs:SendMessage", i.queue_url())
    } else if let Some(i) = input.downcast_ref::<sqs::send_message_batch::SendMessageBatchInput>() {
        ("sqs:SendMessage", i.queue_url())
    } else if let Some(i) =
        input.downcast_ref::<sqs::change_message_visibility::ChangeMessageVisibilityInput>()
    {
        ("sqs:ChangeMessageVisibility", i.queue_url())
    } else if let Some(i) = input
        .downcast_ref::<sqs::change_message_visibility_batch::ChangeMessageVisibilityBatchInput>(
    ) {
        ("sqs:ChangeMessageVisibility", i.queue_url())
    } else if let Some(i) = input.downcast_ref::<sqs::receive_message::ReceiveMessageInput>() {
        ("sqs:ReceiveMessage", i.queue_url())
    } else if let Some(i) = input.downcast_ref::<sqs::delete_message::DeleteMessageInput>() {
        ("sqs:DeleteMessage", i.queue_url())
    } else if let Some(i) =
        input.downcast_ref::<sqs::delete_message_batch::DeleteMessageBatchInput>()
    {
        ("sqs:DeleteMessage", i.queue_url())
    } else if let Some(i) =
        input.downcast_ref::<sqs::get_queue_attributes::GetQueueAttributesInput>()
    {
        ("sqs:GetQueueAttributes", i.queue_url())
    } else {
        return None;
    };
    Some((action, url.unwrap_or("?").to_owned()))
}

/// The template's secret statement names, by the stack's secret ids.
fn secret_name(id: &str) -> &'static str {
    match id {
        local_stack::AUTH_SECRET_ID => "Auth",
        local_stack::ZOOM_SECRET_ID => "Zoom",
        local_stack::ZOOM_WEBHOOK_SECRET_ID => "ZoomWebhook",
        local_stack::JITSI_SECRET_ID => "Jitsi",
        local_stack::ZOHO_SECRET_ID => "Zoho",
        _ => "unknown secret",
    }
}

/// One function's App, recording its AWS calls.
async fn recording_app(
    stack: &mut Stack,
    clock: Arc<telemeet::clock::ManualClock>,
) -> (App, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let aws = stack.aws_config().await;
    let ddb = aws_sdk_dynamodb::config::Builder::from(&aws)
        .interceptor(Recording(recorder.clone()))
        .build();
    let sm = aws_sdk_secretsmanager::config::Builder::from(&aws)
        .interceptor(Recording(recorder.clone()))
        .build();
    stack.dynamodb = Some(aws_sdk_dynamodb::Client::from_conf(ddb));
    stack.secretsmanager = Some(aws_sdk_secretsmanager::Client::from_conf(sm));
    let app = stack
        .app_configured(clock, Settings::default(), &[("FALLBACK_PROVIDER", "none")])
        .await
        .expect("app");
    stack.dynamodb = None;
    stack.secretsmanager = None;
    (app, recorder)
}

/// The event functions' app (`telemeet::notify::EventsApp`, as `EventsApp::from_env` builds
/// it) on this stack, recording its AWS calls; jobs go to `queue_url`. Local mode: loopback
/// receivers. The real clock: receivers check `webhook-timestamp` against theirs.
async fn recording_events(
    stack: &Stack,
    queue_url: &str,
) -> (telemeet::notify::EventsApp, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let aws = stack.aws_config().await;
    let ddb = aws_sdk_dynamodb::config::Builder::from(&aws)
        .interceptor(Recording(recorder.clone()))
        .build();
    let sm = aws_sdk_secretsmanager::config::Builder::from(&aws)
        .interceptor(Recording(recorder.clone()))
        .build();
    let sqs = aws_sdk_sqs::config::Builder::from(&aws)
        .interceptor(Recording(recorder.clone()))
        .build();
    let clock: Arc<dyn telemeet::clock::Clock> = Arc::new(telemeet::clock::SystemClock);
    let store = telemeet::store::DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(ddb),
        local_stack::TABLE_NAME,
        clock.clone(),
    );
    let settings = telemeet::notify::EventSettings {
        secrets_prefix: local_stack::ORG_SECRETS_PREFIX.to_owned(),
        retry_schedule: vec![std::time::Duration::from_secs(1)],
        local: telemeet::notify::ssrf::LocalMode(true),
        ..Default::default()
    };
    let app = telemeet::notify::EventsApp::new(
        telemeet::store::Stores::of(Arc::new(store)),
        Arc::new(telemeet::notify::queue::SqsQueue::new(
            aws_sdk_sqs::Client::from_conf(sqs),
            queue_url,
        )),
        Arc::new(telemeet::secrets::SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::from_conf(sm),
        )),
        clock,
        settings,
    )
    .expect("events app");
    (app, recorder)
}

/// Routes every change the stream has for the router (`app`), until a read finds none.
async fn route_all(local: &local_gateway::events::LocalEvents, app: &telemeet::notify::EventsApp) {
    for _ in 0..20 {
        let batch = local.read_changes().await.expect("GetRecords");
        if batch["Records"].as_array().is_none_or(Vec::is_empty) {
            return;
        }
        let answer = telemeet::notify::route::handle(app, &batch)
            .await
            .expect("routed");
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    }
}

/// What Lambda's event source mappings of `function` (plain `AWS::Lambda::EventSourceMapping`
/// resources naming it) do with its role, not its code, per the AWS docs on execution roles:
/// a DynamoDB stream is described, listed and read (`DescribeStream`, `GetRecords`,
/// `GetShardIterator`, `ListStreams`); an SQS queue is received from, deleted from and
/// described (`ReceiveMessage`, `DeleteMessage`, `GetQueueAttributes`); an `OnFailure` SQS
/// destination is sent to. As `(stream actions, queue actions)` in `FunctionPolicy`'s terms.
fn mapping_needs(doc: &yaml_serde::Value, function: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let resources = doc["Resources"].as_mapping().expect("Resources");
    let logical = resources
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(function))
        .and_then(|(k, _)| k.as_str())
        .expect("function resource");
    // SAM's own stream and queue events would attach managed policies instead: none.
    for (name, event) in resources[logical]["Properties"]["Events"]
        .as_mapping()
        .into_iter()
        .flatten()
    {
        let kind = event["Type"].as_str().unwrap_or("");
        assert!(
            !["DynamoDB", "SQS", "Kinesis"].contains(&kind),
            "{function}: event {name:?} is a SAM {kind} event; template.yaml uses plain mappings"
        );
    }
    let arn = |v: &yaml_serde::Value| match v {
        yaml_serde::Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str().map(str::to_owned),
        _ => None,
    };
    let (mut stream, mut queues) = (BTreeSet::new(), BTreeSet::new());
    for (_, mapping) in resources {
        if mapping["Type"].as_str() != Some("AWS::Lambda::EventSourceMapping") {
            continue;
        }
        let props = &mapping["Properties"];
        let named = match &props["FunctionName"] {
            yaml_serde::Value::Tagged(t) if t.tag == "Ref" => t.value.as_str() == Some(logical),
            _ => false,
        };
        if !named {
            continue;
        }
        let source = arn(&props["EventSourceArn"]).expect("a mapping's source, !GetAtt");
        if source.ends_with(".StreamArn") {
            for a in [
                "DescribeStream",
                "GetRecords",
                "GetShardIterator",
                "ListStreams",
            ] {
                stream.insert(format!("dynamodb:{a}"));
            }
        } else if let Some(queue) = source.strip_suffix(".Arn") {
            for a in ["ReceiveMessage", "DeleteMessage", "GetQueueAttributes"] {
                queues.insert(format!("sqs:{a}@{queue}"));
            }
        }
        if let Some(dead) = arn(&props["DestinationConfig"]["OnFailure"]["Destination"]) {
            let queue = dead.strip_suffix(".Arn").expect("an SQS destination");
            queues.insert(format!("sqs:SendMessage@{queue}"));
        }
    }
    (stream, queues)
}

/// The weekly cleanup fanned out as production runs it, with `app` (recording into `rec`):
/// planned into a work queue (its sends recorded), the queue drained as the SQS mapping
/// does (those receives and deletes are the mapping's: `mapping_needs`); then an
/// in-process run that finds nothing left. The work queue, for its URLs.
/// A plain function returning the boxed future: the future is built in this frame, not in
/// the test's (its poll frame is large already; the cycle's would overflow its stack).
fn weekly_cleanup_fanned_out<'a>(
    stack: &'a Stack,
    cleanup: &'a App,
    rec: &'a Arc<Recorder>,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = local_gateway::cleanup::LocalCleanupQueue> + Send + 'a>,
> {
    Box::pin(weekly_cleanup(stack, cleanup, rec))
}

async fn weekly_cleanup(
    stack: &Stack,
    cleanup: &App,
    rec: &Arc<Recorder>,
) -> local_gateway::cleanup::LocalCleanupQueue {
    let cleanup_queue = local_gateway::cleanup::LocalCleanupQueue::create(
        &stack.aws_config().await,
        local_stack::TABLE_NAME,
    )
    .await
    .expect("cleanup queue");
    let recording_sqs = aws_sdk_sqs::config::Builder::from(&stack.aws_config().await)
        .interceptor(Recording(rec.clone()))
        .build();
    let cleanup_sender = telemeet::cleanup::fanout::SqsWorkQueue::new(
        aws_sdk_sqs::Client::from_conf(recording_sqs),
        cleanup_queue.url.clone(),
    );
    let weekly = json!({ "time": (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339(), "detail": {} });
    let cleanup_settings = telemeet::cleanup::CleanupSettings::default();
    let worker = local_gateway::cleanup::Worker {
        app: cleanup,
        settings: &cleanup_settings,
        sender: &cleanup_sender,
        timeout: std::time::Duration::from_secs(60),
    };
    let summary = Box::pin(local_gateway::cleanup::cycle(
        &cleanup_queue,
        worker,
        &weekly,
    ))
    .await
    .expect("cycle");
    assert!(
        summary["archived"].as_u64().is_some_and(|n| n >= 8),
        "{summary}"
    );
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["complete"], true, "{summary}");
    let again = telemeet::cleanup::run(
        cleanup,
        &cleanup_settings,
        &weekly,
        cleanup.service.clock.instant() + std::time::Duration::from_secs(60),
    )
    .await
    .expect("summary");
    assert_eq!(again["archived"], 0, "{again}");
    cleanup_queue
}

/// What a recording says the function needs, in the template's terms.
#[derive(Default)]
struct Needs {
    table: BTreeSet<String>,
    /// `action pattern` for each partition key kind an action touches (`dynamodb:LeadingKeys`).
    keys: BTreeSet<String>,
    index: BTreeSet<String>,
    secrets: BTreeSet<String>,
    org_secrets: BTreeSet<String>,
    /// Actions on subscriptions' signing secrets (`…/orgs/*/webhooks/*`).
    webhook_secrets: BTreeSet<String>,
    /// `action@QueueResource` (`sqs:SendMessage@DeliveryQueue`), as `FunctionPolicy::queue_actions`.
    queues: BTreeSet<String>,
}

/// `queues`: the template's queue resource of each local queue URL.
fn needs(recorded: &BTreeSet<String>, queues: &BTreeMap<String, &str>) -> Needs {
    let mut n = Needs::default();
    let (table, index, secrets) = (&mut n.table, &mut n.index, &mut n.secrets);
    for r in recorded {
        if let Some(call) = r.strip_prefix("queue:") {
            let (action, url) = call.split_once(' ').unwrap_or((call, "?"));
            let queue = queues.get(url).copied().unwrap_or("an unknown queue");
            n.queues.insert(format!("{action}@{queue}"));
        } else if let Some(pattern) = r.strip_prefix("key:") {
            n.keys.insert(pattern.to_owned());
        } else if let Some(action) = r.strip_prefix("orgsecret:") {
            n.org_secrets.insert(action.to_owned());
        } else if let Some(action) = r.strip_prefix("webhooksecret:") {
            n.webhook_secrets.insert(action.to_owned());
        } else if let Some(id) = r.strip_prefix("secret:") {
            secrets.insert(secret_name(id).to_owned());
        } else if r.contains('@') {
            index.insert(r.clone());
        } else {
            table.insert(r.clone());
        }
    }
    n
}

fn start_at(hours_from_now: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours_from_now))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn body(provider: &str, start: &str) -> Value {
    json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"], "startTime": start, "durationMinutes": 30, "provider": provider })
}

async fn ok(app: &App, function: Function, req: lambda_http::Request, what: &str) -> Value {
    let r = call(app, function, req).await;
    assert!(
        (200..300).contains(&r.status),
        "{what}: {} {:?}",
        r.status,
        r.body
    );
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_functions_policy_is_exactly_what_its_code_calls() {
    let mut stack = in_process_stack().await;
    let clock = manual_clock();
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let host = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let mut recorded: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    // clinic-9 brings its own Zoom account (the sandbox's, under its own connection).
    let org_service = day_token(&stack, "svc-9", "service", "clinic-9");

    // org-admin: connections made, replaced, listed and removed; settings; the host directory.
    let (admin, rec) = recording_app(&mut stack, clock.clone()).await;
    let org = |method: &str, path: &str, b: Option<&Value>| {
        lambda_request(method, path, Some(&org_service), b)
    };
    let zoom = stack.zoom_connection(&json!({ "defaultUser": "me" }));
    for what in ["connect", "replace"] {
        ok(
            &admin,
            Function::OrgAdmin,
            org("PUT", "/org/providers/zoom", Some(&zoom)),
            what,
        )
        .await;
    }
    let jitsi = json!({ "domain": "meet.clinic9.example", "appId": "app9", "appSecret": "jitsi-app-secret-of-clinic-9-0123456" });
    stack.remember("jitsi-app-secret-of-clinic-9");
    ok(
        &admin,
        Function::OrgAdmin,
        org("PUT", "/org/providers/jitsi", Some(&jitsi)),
        "jitsi",
    )
    .await;
    ok(
        &admin,
        Function::OrgAdmin,
        org("DELETE", "/org/providers/jitsi", None),
        "disconnect",
    )
    .await;
    ok(
        &admin,
        Function::OrgAdmin,
        org("GET", "/org/providers", None),
        "connections",
    )
    .await;
    let settings = json!({ "provider": "zoom", "conversationReuseSeconds": 900 });
    ok(
        &admin,
        Function::OrgAdmin,
        org("PUT", "/org/settings", Some(&settings)),
        "settings",
    )
    .await;
    ok(
        &admin,
        Function::OrgAdmin,
        org("GET", "/org/settings", None),
        "read settings",
    )
    .await;
    for user in ["dr-9", "dr-10"] {
        let mapping = json!({ "zoomUser": "me" });
        ok(
            &admin,
            Function::OrgAdmin,
            org("PUT", &format!("/org/hosts/{user}"), Some(&mapping)),
            "map",
        )
        .await;
    }
    ok(
        &admin,
        Function::OrgAdmin,
        org("GET", "/org/hosts/dr-9", None),
        "host",
    )
    .await;
    ok(
        &admin,
        Function::OrgAdmin,
        org("GET", "/org/hosts?limit=1", None),
        "hosts",
    )
    .await;
    ok(
        &admin,
        Function::OrgAdmin,
        org("DELETE", "/org/hosts/dr-10", None),
        "unmap",
    )
    .await;
    // Event subscriptions: made (the signing secret stored), listed, rotated (the current
    // secret read back) and removed (secret and subscription).
    let subscription = json!({ "url": "https://8.8.8.8/telemeet/events", "events": ["meeting.created", "participant.joined"] });
    let made = ok(
        &admin,
        Function::OrgAdmin,
        org("POST", "/org/webhooks", Some(&subscription)),
        "subscribe",
    )
    .await;
    stack.remember(made["secret"].as_str().unwrap_or_default());
    let hook = made["id"].as_str().expect("subscription id").to_owned();
    ok(
        &admin,
        Function::OrgAdmin,
        org("GET", "/org/webhooks", None),
        "subscriptions",
    )
    .await;
    let rotated = ok(
        &admin,
        Function::OrgAdmin,
        org("POST", &format!("/org/webhooks/{hook}/rotate"), None),
        "rotate",
    )
    .await;
    stack.remember(rotated["secret"].as_str().unwrap_or_default());
    ok(
        &admin,
        Function::OrgAdmin,
        org("DELETE", &format!("/org/webhooks/{hook}"), None),
        "unsubscribe",
    )
    .await;
    recorded.insert("org-admin", rec.take());

    // create-meeting: appointments on every provider (created, then reused), a conversation,
    // and a provider failure that releases the claim.
    let (create, rec) = recording_app(&mut stack, clock.clone()).await;
    let put = |appointment: &str, b: &Value| {
        lambda_request(
            "PUT",
            &format!("/appointments/{appointment}/meeting"),
            Some(&service),
            Some(b),
        )
    };
    let mut meetings = BTreeMap::new();
    for provider in ["zoom", "jitsi", "zoho"] {
        let b = body(provider, &start_at(24));
        let m = ok(
            &create,
            Function::CreateMeeting,
            put(provider, &b),
            provider,
        )
        .await;
        ok(&create, Function::CreateMeeting, put(provider, &b), "reuse").await;
        meetings.insert(provider, m);
    }
    let b = body("zoom", &start_at(24));
    let m = ok(
        &create,
        Function::CreateMeeting,
        put("webhook", &b),
        "webhook",
    )
    .await;
    meetings.insert("webhook", m);
    for provider in ["zoom", "zoho"] {
        let b = body(provider, &start_at(-3));
        let past = format!("past-{provider}");
        let m = ok(&create, Function::CreateMeeting, put(&past, &b), &past).await;
        meetings.insert(
            if provider == "zoom" {
                "past-zoom"
            } else {
                "past-zoho"
            },
            m,
        );
    }
    ok(
        &create,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/conversations/chat-1/meeting",
            Some(&patient),
            Some(&json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] })),
        ),
        "conversation",
    )
    .await;
    stack
        .fault(json!({ "operation": "POST /v2/users/{userId}/meetings", "kind": "status", "status": 400 }))
        .await;
    let refused = call(
        &create,
        Function::CreateMeeting,
        put("refused", &body("zoom", &start_at(24))),
    )
    .await;
    assert_eq!(refused.status, 502, "{:?}", refused.body);
    let mut own = body("zoom", &start_at(24));
    own["hostUserId"] = json!("dr-9");
    let req = lambda_request(
        "PUT",
        "/appointments/own/meeting",
        Some(&org_service),
        Some(&own),
    );
    meetings.insert(
        "own",
        ok(&create, Function::CreateMeeting, req, "own account").await,
    );
    let mut own_past = body("zoom", &start_at(-3));
    own_past["hostUserId"] = json!("dr-9");
    let req = lambda_request(
        "PUT",
        "/appointments/own-past/meeting",
        Some(&org_service),
        Some(&own_past),
    );
    meetings.insert(
        "own-past",
        ok(&create, Function::CreateMeeting, req, "own account, past").await,
    );
    recorded.insert("create-meeting", rec.take());

    // get-meeting-link: every read route, links for every provider and role, and a Zoom start
    // URL refreshed (and stored) after 90 minutes.
    let (links, rec) = recording_app(&mut stack, clock.clone()).await;
    let get = |token: &str, path: &str| lambda_request("GET", path, Some(token), None);
    ok(
        &links,
        Function::GetMeetingLink,
        get(&service, "/appointments/zoom/meeting"),
        "appointment",
    )
    .await;
    ok(
        &links,
        Function::GetMeetingLink,
        get(&patient, "/conversations/chat-1/meeting"),
        "conversation",
    )
    .await;
    clock.advance(chrono::Duration::minutes(91));
    for provider in ["zoom", "jitsi", "zoho"] {
        let id = meetings[provider]["meetingId"].as_str().expect("id");
        ok(
            &links,
            Function::GetMeetingLink,
            get(&service, &format!("/meetings/{id}")),
            "read",
        )
        .await;
        for token in [&host, &patient] {
            let link = ok(
                &links,
                Function::GetMeetingLink,
                get(token, &format!("/meetings/{id}/link")),
                "link",
            )
            .await;
            stack.remember(link["url"].as_str().unwrap_or_default());
        }
    }
    let id = meetings["own"]["meetingId"].as_str().expect("id");
    let link = ok(
        &links,
        Function::GetMeetingLink,
        get(&org_service, &format!("/meetings/{id}/link?role=host")),
        "own account's host link, refreshed",
    )
    .await;
    stack.remember(link["url"].as_str().unwrap_or_default());
    recorded.insert("get-meeting-link", rec.take());

    // manage-meeting: reschedule, start, end and cancel on every provider, lists and stats.
    let (manage, rec) = recording_app(&mut stack, clock.clone()).await;
    let send = |method: &str, path: &str, b: Option<&Value>| {
        lambda_request(method, path, Some(&service), b)
    };
    for provider in ["zoom", "jitsi", "zoho"] {
        let id = meetings[provider]["meetingId"].as_str().expect("id");
        let change = json!({ "startTime": start_at(48), "durationMinutes": 45 });
        ok(
            &manage,
            Function::ManageMeeting,
            send("PATCH", &format!("/meetings/{id}"), Some(&change)),
            "reschedule",
        )
        .await;
        ok(
            &manage,
            Function::ManageMeeting,
            send("DELETE", &format!("/meetings/{id}"), None),
            "cancel",
        )
        .await;
    }
    for past in ["past-zoom", "past-zoho"] {
        let id = meetings[past]["meetingId"].as_str().expect("id");
        for action in ["start", "end"] {
            ok(
                &manage,
                Function::ManageMeeting,
                send("POST", &format!("/meetings/{id}/{action}"), None),
                action,
            )
            .await;
        }
    }
    let id = meetings["own"]["meetingId"].as_str().expect("id");
    let change = json!({ "startTime": start_at(50) });
    let org_send = |method: &str, path: &str, b: Option<&Value>| {
        lambda_request(method, path, Some(&org_service), b)
    };
    for (method, b) in [("PATCH", Some(&change)), ("DELETE", None)] {
        ok(
            &manage,
            Function::ManageMeeting,
            org_send(method, &format!("/meetings/{id}"), b),
            "own account",
        )
        .await;
    }
    let id = meetings["own-past"]["meetingId"].as_str().expect("id");
    for action in ["start", "end"] {
        ok(
            &manage,
            Function::ManageMeeting,
            org_send("POST", &format!("/meetings/{id}/{action}"), None),
            action,
        )
        .await;
    }
    ok(
        &manage,
        Function::ManageMeeting,
        send("GET", "/users/pat-9/meetings?limit=2", None),
        "list",
    )
    .await;
    ok(
        &manage,
        Function::ManageMeeting,
        send("GET", "/stats", None),
        "stats",
    )
    .await;
    recorded.insert("manage-meeting", rec.take());

    // zoom-webhook: URL validation and status / attendance events for a meeting of ours.
    let (webhook, rec) = recording_app(&mut stack, clock.clone()).await;
    let zoom_id: i64 = meetings["webhook"]["providerMeetingId"]
        .as_str()
        .and_then(|z| z.parse().ok())
        .expect("zoom id");
    // The webhook checks timestamps against the (advanced) injected clock.
    let now = telemeet::clock::Clock::now(clock.as_ref());
    for (event, object) in [
        ("endpoint.url_validation", json!({ "plainToken": "abc123" })),
        (
            "meeting.updated",
            json!({ "object": { "id": zoom_id, "uuid": "u1", "start_time": start_at(30), "duration": 40 }, "old_object": { "id": zoom_id } }),
        ),
        (
            "meeting.started",
            json!({ "object": { "id": zoom_id, "uuid": "u1" } }),
        ),
        (
            "meeting.participant_joined",
            json!({ "object": { "id": zoom_id, "uuid": "u1", "participant": { "user_id": "1", "id": "", "join_time": now.to_rfc3339() } } }),
        ),
        (
            "meeting.ended",
            json!({ "object": { "id": zoom_id, "uuid": "u1", "end_time": now.to_rfc3339() } }),
        ),
    ] {
        let body = json!({ "event": event, "event_ts": now.timestamp_millis(), "payload": object })
            .to_string();
        let ts = now.timestamp();
        let (status, answer) = deliver(
            &webhook,
            delivery(
                &[
                    ("x-zm-request-timestamp", ts.to_string()),
                    (
                        "x-zm-signature",
                        sign(&stack.webhook_secret, ts, body.as_bytes()),
                    ),
                ],
                &body,
                false,
            ),
        )
        .await;
        assert_eq!(status, 200, "{event}: {answer}");
    }
    // clinic-9's own Zoom app, verified with its own secret token.
    let body = json!({ "event": "endpoint.url_validation", "event_ts": now.timestamp_millis(), "payload": { "plainToken": "xyz" } }).to_string();
    let ts = now.timestamp();
    let secret = zoom["webhookSecretToken"].as_str().expect("token");
    let (status, answer) = deliver(
        &webhook,
        delivery_to(
            "/webhooks/zoom/clinic-9",
            &[
                ("x-zm-request-timestamp", ts.to_string()),
                ("x-zm-signature", sign(secret, ts, body.as_bytes())),
            ],
            &body,
            false,
        ),
    )
    .await;
    assert_eq!(status, 200, "org webhook: {answer}");
    recorded.insert("zoom-webhook", rec.take());

    // cleanup: the close-rooms pass deletes chat-1's room (its window ended 91 minutes in)
    // and marks it closed; a week on, the ended and cancelled meetings are deleted at their
    // providers (Zoom, Zoho; Jitsi needs no call) and archived; orphans are looked for at
    // each provider. The weekly run is fanned out as production runs it: planned into the
    // work queue (its sends recorded), the queue drained as the SQS mapping does (those
    // receives and deletes are the mapping's: `mapping_needs`); then an in-process run.
    let (cleanup, rec) = recording_app(&mut stack, clock.clone()).await;
    let closed = telemeet::cleanup::run(
        &cleanup,
        &telemeet::cleanup::CleanupSettings::default(),
        &json!({ "time": telemeet::clock::Clock::now(clock.as_ref()).to_rfc3339(), "detail": { "pass": "close-rooms" } }),
        cleanup.service.clock.instant() + std::time::Duration::from_secs(60),
    )
    .await
    .expect("summary");
    assert_eq!(closed["roomsClosed"], 1, "{closed}");
    let cleanup_queue = weekly_cleanup_fanned_out(&stack, &cleanup, &rec).await;
    recorded.insert("cleanup", rec.take());

    // event-router and event-delivery (DESIGN.md, "Events to the platform"), fed as their
    // event source mappings feed them: the local gateway's LocalEvents reads moto's stream
    // and queue (those reads are the mappings', not the code's: `mapping_needs`), the
    // recording app routes and delivers. The router queries the org's subscriptions and
    // notice-index, reads the due meetings, saves no-shows and enqueues jobs; the deliverer
    // reads the subscription and its signing secret, disables it on 410 and sets its job's
    // next attempt. clinic-1 subscribes three receivers (infra/event-receiver): one
    // accepting, one failing once (500), one gone (410).
    let setup = stack
        .app(
            clock.clone(),
            Settings {
                events_local_mode: telemeet::notify::ssrf::LocalMode(true),
                ..Default::default()
            },
        )
        .await
        .expect("app");
    let local = {
        let aws = stack.aws_config().await;
        let secrets: Arc<dyn telemeet::secrets::SecretSource> = Arc::new(
            telemeet::secrets::SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws)),
        );
        local_gateway::events::LocalEvents::new(
            &aws,
            &stack.moto_url,
            local_stack::TABLE_NAME,
            telemeet::notify::EventSettings::default(),
            (setup.service.stores.clone(), secrets),
            Arc::new(telemeet::clock::SystemClock),
        )
        .await
        .expect("local events")
    };
    let (accepting, failing, gone) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    for (receiver, events) in [
        (&accepting, &["meeting.created", "meeting.no_show"][..]),
        (&failing, &["meeting.created"][..]),
        (&gone, &["meeting.created"][..]),
    ] {
        let secret = subscribe(&stack, &setup, "clinic-1", receiver, events).await;
        stack.remember(&secret);
    }
    failing.plan(&[500], 0).await;
    gone.plan(&[410], 0).await;
    let (router, rec) = recording_events(&stack, &local.queue_url).await;
    // A meeting created for clinic-1 (meeting.created: its subscriptions read, jobs queued),
    // one for clinic-2 (nobody subscribed: nothing queued); clinic-1's started an hour ago and
    // nobody joined: the sweep declares it (notice-index, the meetings read, the save).
    let clinic_2 = day_token(&stack, "svc-2", "service", "clinic-2");
    for (token, appointment) in [(&service, "ev-no-show"), (&clinic_2, "ev-unsubscribed")] {
        let r = call(
            &setup,
            Function::CreateMeeting,
            lambda_request(
                "PUT",
                &format!("/appointments/{appointment}/meeting"),
                Some(token),
                Some(&self::body("jitsi", &start_at(-1))),
            ),
        )
        .await;
        assert_eq!(r.status, 201, "{appointment}: {}", r.body);
    }
    route_all(&local, &router).await;
    let sweep = json!({ "time": chrono::Utc::now().to_rfc3339(), "detail": { "pass": "no-show" } });
    let swept = telemeet::notify::route::handle(&router, &sweep)
        .await
        .expect("sweep");
    assert!(
        swept["declared"].as_u64().is_some_and(|n| n >= 1),
        "{swept}"
    );
    route_all(&local, &router).await;
    recorded.insert("event-router", rec.take());

    let (deliverer, rec) = recording_events(&stack, &local.queue_url).await;
    let mut done = false;
    for _ in 0..100 {
        let batch = local.receive().await.expect("ReceiveMessage");
        if batch["Records"].as_array().is_some_and(|r| !r.is_empty()) {
            let answer = telemeet::notify::deliver::handle(&deliverer, &batch)
                .await
                .expect("delivered");
            local.settle(&batch, &answer).await.expect("settled");
        }
        let types = |d: Vec<Value>| -> Vec<String> {
            d.iter()
                .filter_map(|d| d["body"]["type"].as_str().map(str::to_owned))
                .collect()
        };
        let accepted = types(accepting.deliveries().await);
        if accepted.iter().any(|t| t == "meeting.no_show")
            && accepted.iter().any(|t| t == "meeting.created")
            && !failing.all().await.is_empty()
            && !gone.all().await.is_empty()
        {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "every outcome delivered: accepted, failed, gone");
    let org = telemeet::ids::OrgId::parse("clinic-1", "org").expect("org");
    let subscriptions = setup
        .service
        .stores
        .subscriptions
        .subscriptions(&org)
        .await
        .expect("subscriptions");
    assert_eq!(
        subscriptions
            .iter()
            .filter(|s| s.disabled_at.is_some())
            .count(),
        1,
        "the gone receiver's subscription is disabled"
    );
    recorded.insert("event-delivery", rec.take());

    // The template must grant exactly that.
    let policies = local_gateway::template::function_policies(local_gateway::template::TEMPLATE)
        .expect("policies");
    assert_eq!(
        policies.keys().map(String::as_str).collect::<Vec<_>>(),
        recorded.keys().copied().collect::<Vec<_>>(),
        "every function exercised"
    );
    let queue_names: BTreeMap<String, &str> = [
        (local.queue_url.clone(), "DeliveryQueue"),
        (local.dead_letter_url.clone(), "DeliveryDeadLetterQueue"),
        (cleanup_queue.url.clone(), "CleanupQueue"),
        (
            cleanup_queue.dead_letter_url.clone(),
            "CleanupWorkDeadLetterQueue",
        ),
    ]
    .into_iter()
    .collect();
    let doc: yaml_serde::Value =
        yaml_serde::from_str(local_gateway::template::TEMPLATE).expect("yaml");
    for (function, calls) in &recorded {
        assert!(
            !calls.contains("unrecognised AWS call"),
            "{function}: an AWS call this test cannot map to an IAM action: {calls:?}"
        );
        let Needs {
            table,
            keys,
            index,
            secrets,
            org_secrets,
            webhook_secrets,
            queues,
        } = needs(calls, &queue_names);
        let p = &policies[*function];
        // Item-level least privilege: each function reaches only the key kinds it uses
        // (the internet-facing webhook cannot write a claim or a token).
        assert_eq!(
            p.unlimited_table_statements, 0,
            "{function}: a table statement without a dynamodb:LeadingKeys condition"
        );
        // Nothing missing: every action reaches every key kind it touched. Nothing extra: the
        // key kinds granted are exactly those the code touches (per action would be brittle:
        // a Zoho token refresh the test's run did not need would be denied in production).
        let missing: Vec<&String> = keys.difference(&p.leading_keys).collect();
        assert!(
            missing.is_empty(),
            "{function}: actions on key kinds the code uses but template.yaml's dynamodb:LeadingKeys refuse: {missing:?}"
        );
        let kinds = |pairs: &BTreeSet<String>| -> BTreeSet<String> {
            pairs
                .iter()
                .filter_map(|p| p.split_once(' ').map(|(_, k)| k.to_owned()))
                .collect()
        };
        assert_eq!(
            kinds(&p.leading_keys),
            kinds(&keys),
            "{function}: key kinds in template.yaml's dynamodb:LeadingKeys vs those the code uses"
        );
        assert_eq!(
            p.org_secret_actions, org_secrets,
            "{function}: actions on orgs' secrets in template.yaml vs used by the code"
        );
        // Signing secrets are under the orgs' prefix too: an action on them is granted by
        // the narrow `…/webhooks/*` statement or by an `…/orgs/*` one (org-admin writes both
        // kinds); the narrow statement holds nothing the code does not do.
        let reach: BTreeSet<String> = p
            .webhook_secret_actions
            .union(&p.org_secret_actions)
            .cloned()
            .collect();
        let missing: Vec<&String> = webhook_secrets.difference(&reach).collect();
        assert!(
            missing.is_empty(),
            "{function}: actions on subscriptions' signing secrets the code uses but template.yaml refuses: {missing:?}"
        );
        let extra: Vec<&String> = p
            .webhook_secret_actions
            .difference(&webhook_secrets)
            .collect();
        assert!(
            extra.is_empty(),
            "{function}: template.yaml grants actions on signing secrets the code never uses: {extra:?}"
        );
        assert_eq!(
            p.table_actions, table,
            "{function}: table actions in template.yaml vs used by the code"
        );
        assert_eq!(
            p.index_actions, index,
            "{function}: index actions in template.yaml vs used by the code"
        );
        assert_eq!(
            p.secrets, secrets,
            "{function}: secrets in template.yaml vs read by the code"
        );
        // The stream and the queues: what the code calls plus what Lambda's event source
        // mappings do with the function's role.
        let (mapping_stream, mapping_queues) = mapping_needs(&doc, function);
        assert_eq!(
            p.stream_actions, mapping_stream,
            "{function}: stream actions in template.yaml vs needed by its event source mappings"
        );
        assert_eq!(
            p.queue_actions,
            queues
                .union(&mapping_queues)
                .cloned()
                .collect::<BTreeSet<_>>(),
            "{function}: queue actions in template.yaml vs used by the code and its event source mappings"
        );
        assert!(
            !p.all_actions.iter().any(|a| a.contains("Scan")),
            "{function} may Scan"
        );
    }
    // A secret the stack creates may be read only by the functions whose policy reads it.
    let role_of = |function: &str| {
        let logical = doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(function))
            .and_then(|(k, _)| k.as_str())
            .expect("function resource");
        format!("{logical}Role.Arn")
    };
    for name in ["Auth", "Zoom", "ZoomWebhook", "Jitsi", "Zoho"] {
        let allowed = &doc["Resources"][format!("{name}SecretPolicy").as_str()]["Properties"]["ResourcePolicy"]
            ["Statement"][0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"];
        let listed: Vec<&yaml_serde::Value> = match allowed {
            yaml_serde::Value::Sequence(list) => list.iter().collect(),
            one => vec![one],
        };
        let mut roles: Vec<String> = listed
            .into_iter()
            .filter_map(|v| match v {
                yaml_serde::Value::Tagged(t) => t.value.as_str().map(str::to_owned),
                _ => None,
            })
            .collect();
        roles.sort();
        let mut readers: Vec<String> = policies
            .iter()
            .filter(|(_, p)| p.secrets.contains(name))
            .map(|(f, _)| role_of(f))
            .collect();
        readers.sort();
        assert_eq!(roles, readers, "{name}SecretPolicy's readers");
    }
    stack.finish(0).await;
}

#[test]
fn the_template_enables_ttl_on_the_attribute_the_code_writes_and_pitr() {
    let def = local_gateway::template::table_definition(local_gateway::template::TEMPLATE)
        .expect("table");
    assert_eq!(
        def.ttl_attribute.as_deref(),
        Some(telemeet::store::dynamo::TTL_ATTRIBUTE)
    );
    let doc: yaml_serde::Value =
        yaml_serde::from_str(local_gateway::template::TEMPLATE).expect("yaml");
    let props = &doc["Resources"]["MeetingsTable"]["Properties"];
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        yaml_serde::Value::Bool(true)
    );
    assert_eq!(
        props["DeletionProtectionEnabled"],
        yaml_serde::Value::Bool(true)
    );
    assert_eq!(
        props["BillingMode"],
        yaml_serde::Value::String("PAY_PER_REQUEST".into())
    );
    assert_eq!(
        doc["Resources"]["MeetingsTable"]["DeletionPolicy"],
        yaml_serde::Value::String("Retain".into())
    );
}

#[tokio::test]
async fn the_local_table_has_the_templates_keys_indexes_and_ttl() {
    // The gateway creates the table from template.yaml; read back what moto made.
    let stack = Stack::start(Options::default()).await.expect("stack");
    let client = aws_sdk_dynamodb::Client::new(&stack.aws_config().await);
    let table = client
        .describe_table()
        .table_name(local_stack::TABLE_NAME)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("table");
    let def = local_gateway::template::table_definition(local_gateway::template::TEMPLATE)
        .expect("table");
    let keys = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        k.iter()
            .map(|e| format!("{}:{}", e.attribute_name(), e.key_type().as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(table.key_schema()), keys(&def.key_schema));
    let mut attributes: Vec<String> = table
        .attribute_definitions()
        .iter()
        .map(|a| format!("{}:{}", a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    let mut expected: Vec<String> = def
        .attributes
        .iter()
        .map(|a| format!("{}:{}", a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    attributes.sort();
    expected.sort();
    assert_eq!(attributes, expected);
    let indexes = |names: Vec<(String, Vec<String>, String)>| {
        let mut n = names;
        n.sort();
        n
    };
    assert_eq!(
        indexes(
            table
                .global_secondary_indexes()
                .iter()
                .map(|i| (
                    i.index_name().unwrap_or("").to_owned(),
                    keys(i.key_schema()),
                    i.projection()
                        .and_then(|p| p.projection_type())
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default()
                ))
                .collect()
        ),
        indexes(
            def.indexes
                .iter()
                .map(|i| (
                    i.index_name().to_owned(),
                    keys(i.key_schema()),
                    i.projection()
                        .and_then(|p| p.projection_type())
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default()
                ))
                .collect()
        )
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(local_stack::TABLE_NAME)
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .expect("ttl");
    assert_eq!(
        ttl.attribute_name(),
        def.ttl_attribute.as_deref(),
        "TTL attribute"
    );
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    stack.finish(0).await;
}

/// The resource `logical` of template.yaml.
fn resource<'a>(doc: &'a yaml_serde::Value, logical: &str) -> &'a yaml_serde::Value {
    &doc["Resources"][logical]
}

/// `!Ref x` / `!GetAtt x` as `("Ref", "x")`.
fn tagged(v: &yaml_serde::Value) -> Option<(&'static str, &str)> {
    match v {
        yaml_serde::Value::Tagged(t) => ["Ref", "GetAtt"]
            .into_iter()
            .find(|tag| t.tag == *tag)
            .zip(t.value.as_str()),
        _ => None,
    }
}

fn number(v: &yaml_serde::Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v:?}"))
}

/// At least once (guarantee 10) is the pipeline's wiring: the stream carries both images of
/// meeting items only; a failing record is retried alone and then kept; a job is retried
/// with backoff for at least 24 h, never expires before its last attempt, ends in the
/// dead-letter queue, and that raises an alarm. The sweep runs every minute.
#[test]
fn the_event_pipeline_delivers_at_least_once_and_ends_failures_in_the_alarmed_dead_letters() {
    let doc: yaml_serde::Value =
        yaml_serde::from_str(local_gateway::template::TEMPLATE).expect("yaml");
    let table = &resource(&doc, "MeetingsTable")["Properties"];
    assert_eq!(
        table["StreamSpecification"]["StreamViewType"].as_str(),
        Some("NEW_AND_OLD_IMAGES")
    );

    let stream = &resource(&doc, "EventRouterStream")["Properties"];
    assert_eq!(
        tagged(&stream["EventSourceArn"]),
        Some(("GetAtt", "MeetingsTable.StreamArn"))
    );
    assert_eq!(
        tagged(&stream["FunctionName"]),
        Some(("Ref", "EventRouterFunction"))
    );
    assert_eq!(stream["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert_eq!(
        stream["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    assert!(number(&stream["MaximumRetryAttempts"]) >= 1);
    assert_eq!(
        tagged(&stream["DestinationConfig"]["OnFailure"]["Destination"]),
        Some(("GetAtt", "DeliveryDeadLetterQueue.Arn"))
    );
    let pattern: Value = serde_json::from_str(
        stream["FilterCriteria"]["Filters"][0]["Pattern"]
            .as_str()
            .expect("pattern"),
    )
    .expect("pattern is JSON");
    assert_eq!(
        pattern,
        json!({ "dynamodb": { "NewImage": { "type": { "S": ["meeting"] } } } })
    );

    let mapping = &resource(&doc, "EventDeliveryQueueMapping")["Properties"];
    assert_eq!(
        tagged(&mapping["EventSourceArn"]),
        Some(("GetAtt", "DeliveryQueue.Arn"))
    );
    assert_eq!(
        mapping["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    let delivery = &resource(&doc, "EventDeliveryFunction")["Properties"];
    let queue = &resource(&doc, "DeliveryQueue")["Properties"];
    // AWS: a Lambda event source queue's visibility at least 6 x the function's timeout.
    assert!(number(&queue["VisibilityTimeout"]) >= 6 * number(&delivery["Timeout"]));
    // DESIGN.md's backoff: 8 attempts, the waits between them summing to over 24 h.
    let backoff_s: u64 = [5, 300, 1800, 7200, 18_000, 36_000, 36_000].iter().sum();
    assert!(backoff_s >= 24 * 3600);
    assert_eq!(number(&queue["RedrivePolicy"]["maxReceiveCount"]), 8);
    assert_eq!(
        tagged(&queue["RedrivePolicy"]["deadLetterTargetArn"]),
        Some(("GetAtt", "DeliveryDeadLetterQueue.Arn"))
    );
    assert!(number(&queue["MessageRetentionPeriod"]) > backoff_s + 8 * 30);
    let dead = &resource(&doc, "DeliveryDeadLetterQueue")["Properties"];
    assert_eq!(number(&dead["MessageRetentionPeriod"]), 14 * 24 * 3600);

    let alarm = &resource(&doc, "DeliveryDeadLettersAlarm")["Properties"];
    assert_eq!(
        alarm["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible")
    );
    assert_eq!(
        tagged(&alarm["Dimensions"][0]["Value"]),
        Some(("GetAtt", "DeliveryDeadLetterQueue.QueueName"))
    );
    assert_eq!(
        (
            alarm["ComparisonOperator"].as_str(),
            number(&alarm["Threshold"])
        ),
        (Some("GreaterThanThreshold"), 0)
    );

    let sweep = &resource(&doc, "EventRouterFunction")["Properties"]["Events"]["NoShow"];
    assert_eq!(sweep["Type"].as_str(), Some("ScheduleV2"));
    assert_eq!(
        sweep["Properties"]["ScheduleExpression"].as_str(),
        Some("rate(1 minute)")
    );
    let input: Value = serde_json::from_str(sweep["Properties"]["Input"].as_str().expect("input"))
        .expect("input is JSON");
    assert_eq!(input["detail"]["pass"], "no-show");
    assert_eq!(input["time"], "<aws.scheduler.scheduled-time>");
}

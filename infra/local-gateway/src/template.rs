//! Reads template.yaml, the one source of truth: the table definition (to create the same
//! table on a local DynamoDB emulator) and the HTTP API routes.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use yaml_serde::Value;

/// The SAM template, compiled in so the gateway needs no path to find it.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    pub attributes: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeySchemaElement>,
    pub indexes: Vec<GlobalSecondaryIndex>,
    pub ttl_attribute: Option<String>,
    /// The change stream's view (`NEW_AND_OLD_IMAGES`): events to the platform come from it.
    pub stream_view: Option<StreamViewType>,
}

fn get<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key)
        .ok_or_else(|| format!("template table lacks {key}"))
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    get(v, key)?
        .as_str()
        .ok_or_else(|| format!("template table: {key} must be a plain string"))
}

fn list<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    get(v, key)?
        .as_sequence()
        .ok_or_else(|| format!("template table: {key} must be a list"))
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, String> {
    list(v, "KeySchema")?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(k, "AttributeName")?)
                .key_type(KeyType::from(text(k, "KeyType")?))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The `AWS::DynamoDB::Table` resource of the template (there is exactly one).
pub fn table_definition(template: &str) -> Result<TableDefinition, String> {
    let doc: Value = yaml_serde::from_str(template).map_err(|e| format!("template.yaml: {e}"))?;
    let resources = get(&doc, "Resources")?
        .as_mapping()
        .ok_or("template.yaml: Resources is not a mapping")?;
    let tables: Vec<&Value> = resources
        .values()
        .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .collect();
    let [table] = tables.as_slice() else {
        return Err(format!(
            "template.yaml must define exactly one table, found {}",
            tables.len()
        ));
    };
    let props = get(table, "Properties")?;
    if text(props, "BillingMode")? != "PAY_PER_REQUEST" {
        return Err("template table must be PAY_PER_REQUEST".into());
    }
    let attributes = list(props, "AttributeDefinitions")?
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(text(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(text(a, "AttributeType")?))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, String>>()?;
    let indexes = match props.get("GlobalSecondaryIndexes") {
        None => Vec::new(),
        Some(_) => list(props, "GlobalSecondaryIndexes")?
            .iter()
            .map(|g| {
                let projection = get(g, "Projection")?;
                let non_key = projection
                    .get("NonKeyAttributes")
                    .and_then(Value::as_sequence)
                    .map(|s| {
                        s.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    });
                GlobalSecondaryIndex::builder()
                    .index_name(text(g, "IndexName")?)
                    .set_key_schema(Some(key_schema(g)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(text(
                                projection,
                                "ProjectionType",
                            )?))
                            .set_non_key_attributes(non_key)
                            .build(),
                    )
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, String>>()?,
    };
    let ttl_attribute = match props.get("TimeToLiveSpecification") {
        Some(t) if t.get("Enabled").and_then(Value::as_bool) == Some(true) => {
            Some(text(t, "AttributeName")?.to_owned())
        }
        _ => None,
    };
    let stream_view = match props.get("StreamSpecification") {
        Some(s) => Some(StreamViewType::from(text(s, "StreamViewType")?)),
        None => None,
    };
    Ok(TableDefinition {
        attributes,
        key_schema: key_schema(props)?,
        indexes,
        ttl_attribute,
        stream_view,
    })
}

/// The value of a short-form intrinsic (`!Sub x`, `!GetAtt x`), as text.
fn tagged_text<'a>(v: &'a Value, tag: &str) -> Option<&'a str> {
    match v {
        Value::Tagged(t) if t.tag == tag => t.value.as_str(),
        _ => None,
    }
}

/// The HTTP API routes template.yaml wires: `(binary, method, path)` for every
/// `AWS::ApiGatewayV2::Route` (route key `METHOD /path`, or `$default` as `ANY $default`),
/// followed through its integration to the function and that function's binary.
pub fn http_routes(template: &str) -> Result<Vec<(String, String, String)>, String> {
    let doc: Value = yaml_serde::from_str(template).map_err(|e| format!("template.yaml: {e}"))?;
    let resources = get(&doc, "Resources")?
        .as_mapping()
        .ok_or("template.yaml: Resources is not a mapping")?;
    let resource = |name: &str| resources.get(name);
    let mut routes = Vec::new();
    for r in resources.values() {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::ApiGatewayV2::Route") {
            continue;
        }
        let props = get(r, "Properties")?;
        let key = text(props, "RouteKey")?;
        let (method, path) = key.split_once(' ').unwrap_or(("ANY", key));
        let integration = props
            .get("Target")
            .and_then(|t| tagged_text(t, "Sub"))
            .and_then(|t| t.strip_prefix("integrations/${"))
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| format!("route {key}: Target must be !Sub integrations/${{Name}}"))?;
        let function = resource(integration)
            .and_then(|i| i.get("Properties"))
            .and_then(|p| p.get("IntegrationUri"))
            .and_then(|u| tagged_text(u, "GetAtt"))
            .and_then(|u| u.strip_suffix(".Arn"))
            .ok_or_else(|| {
                format!("integration {integration}: IntegrationUri must be !GetAtt F.Arn")
            })?;
        let binary = resource(function)
            .and_then(|f| f.get("Metadata"))
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("function {function} has no BuildProperties.Binary"))?;
        routes.push((binary.to_owned(), method.to_owned(), path.to_owned()));
    }
    Ok(routes)
}

/// What one function's policy in template.yaml allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionPolicy {
    /// `dynamodb:*` actions on the table itself.
    pub table_actions: std::collections::BTreeSet<String>,
    /// `dynamodb:*` actions on the table's indexes, as `action@index`.
    pub index_actions: std::collections::BTreeSet<String>,
    /// The secrets it may read, by the name in its `Read{Name}Secret` statement.
    pub secrets: std::collections::BTreeSet<String>,
    /// Secrets Manager actions on orgs' secrets (`…:secret:${AWS::StackName}/orgs/*`, and
    /// `…/orgs/*/webhooks/*` for event subscriptions' signing secrets).
    pub org_secret_actions: std::collections::BTreeSet<String>,
    /// Secrets Manager actions on event subscriptions' signing secrets only
    /// (`…/orgs/*/webhooks/*`).
    pub webhook_secret_actions: std::collections::BTreeSet<String>,
    /// Actions on the table's change stream (its `StreamArn`, or `…/stream/*`).
    pub stream_actions: std::collections::BTreeSet<String>,
    /// `sqs:*` actions, as `action@QueueResource` (`sqs:SendMessage@DeliveryQueue`).
    pub queue_actions: std::collections::BTreeSet<String>,
    /// Every action of every statement, for global checks (no Scan anywhere).
    pub all_actions: Vec<String>,
    /// `action pattern` for each table action and each `dynamodb:LeadingKeys` pattern its
    /// statement limits it to.
    pub leading_keys: std::collections::BTreeSet<String>,
    /// Table statements without a `ForAllValues:StringLike` `dynamodb:LeadingKeys` condition.
    pub unlimited_table_statements: usize,
}

/// The `dynamodb:LeadingKeys` patterns of a statement's condition, if it has one.
fn leading_keys(statement: &Value) -> Option<Vec<String>> {
    let keys = statement
        .get("Condition")?
        .get("ForAllValues:StringLike")?
        .get("dynamodb:LeadingKeys")?;
    Some(match keys {
        Value::String(k) => vec![k.clone()],
        Value::Sequence(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    })
}

fn actions(statement: &Value) -> Vec<String> {
    match statement.get("Action") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Sequence(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Each function's inline policy, by binary. Statements may be wrapped in
/// `!If [Condition, statement, !Ref AWS::NoValue]` (a secret only some deployments use).
pub fn function_policies(
    template: &str,
) -> Result<std::collections::BTreeMap<String, FunctionPolicy>, String> {
    let doc: Value = yaml_serde::from_str(template).map_err(|e| format!("template.yaml: {e}"))?;
    let resources = get(&doc, "Resources")?
        .as_mapping()
        .ok_or("template.yaml: Resources is not a mapping")?;
    let mut out = std::collections::BTreeMap::new();
    for r in resources.values() {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = r
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or("a function without BuildProperties.Binary")?;
        let mut policy = FunctionPolicy::default();
        let statements = r
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("Statement"))
            .filter_map(Value::as_sequence)
            .flatten();
        for st in statements {
            let st = match st {
                Value::Tagged(t) if t.tag == "If" => {
                    t.value
                        .as_sequence()
                        .and_then(|v| v.get(1))
                        .ok_or("!If statement without a true branch")?
                }
                other => other,
            };
            add_statement(&mut policy, st);
        }
        out.insert(binary.to_owned(), policy);
    }
    Ok(out)
}

/// One statement's grants, by what its resource names: a stack secret, orgs' secrets, the
/// signing secrets, the table's stream, a queue, an index or the table itself.
fn add_statement(policy: &mut FunctionPolicy, st: &Value) {
    let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("");
    let acts = actions(st);
    policy.all_actions.extend(acts.iter().cloned());
    let resource = st.get("Resource");
    if let Some(name) = sid
        .strip_prefix("Read")
        .and_then(|n| n.strip_suffix("Secret"))
    {
        policy.secrets.insert(name.to_owned());
    } else if resource
        .and_then(|r| tagged_text(r, "Sub"))
        .is_some_and(|r| r.ends_with("/orgs/*/webhooks/*"))
    {
        policy.webhook_secret_actions.extend(acts);
    } else if resource
        .and_then(|r| tagged_text(r, "Sub"))
        .is_some_and(|r| r.ends_with("/orgs/*"))
    {
        policy.org_secret_actions.extend(acts);
    } else if resource.and_then(|r| tagged_text(r, "GetAtt")) == Some("MeetingsTable.StreamArn")
        || resource
            .and_then(|r| tagged_text(r, "Sub"))
            .is_some_and(|r| r.ends_with("${MeetingsTable.Arn}/stream/*"))
    {
        policy.stream_actions.extend(acts);
    } else if let Some(queue) = resource
        .and_then(|r| tagged_text(r, "GetAtt"))
        .and_then(|r| r.strip_suffix(".Arn"))
        .filter(|_| acts.iter().all(|a| a.starts_with("sqs:")))
    {
        for a in acts {
            policy.queue_actions.insert(format!("{a}@{queue}"));
        }
    } else if let Some(index) = resource
        .and_then(|r| tagged_text(r, "Sub"))
        .and_then(|r| r.split_once("/index/").map(|(_, i)| i))
    {
        for a in acts {
            policy.index_actions.insert(format!("{a}@{index}"));
        }
    } else if resource.and_then(|r| tagged_text(r, "GetAtt")) == Some("MeetingsTable.Arn") {
        match leading_keys(st) {
            Some(keys) => {
                for (a, k) in acts.iter().flat_map(|a| keys.iter().map(move |k| (a, k))) {
                    policy.leading_keys.insert(format!("{a} {k}"));
                }
            }
            None => policy.unlimited_table_statements += 1,
        }
        policy.table_actions.extend(acts);
    }
}

/// Whether the SDK endpoint override points at this machine.
pub fn is_loopback_endpoint(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Creates `name` from `def` unless it exists. Returns whether it created it.
pub async fn ensure_table(
    client: &Client,
    name: &str,
    def: &TableDefinition,
) -> Result<bool, String> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => return Ok(false),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) => {}
        Err(e) => {
            return Err(format!(
                "DescribeTable: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ));
        }
    }
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(def.attributes.clone()))
        .set_key_schema(Some(def.key_schema.clone()))
        .set_global_secondary_indexes((!def.indexes.is_empty()).then(|| def.indexes.clone()))
        .set_stream_specification(
            def.stream_view
                .clone()
                .map(|view| {
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(view)
                        .build()
                })
                .transpose()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Another gateway on the same emulator created it first.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(false);
        }
        Err(e) => {
            return Err(format!(
                "CreateTable: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ));
        }
    }
    if let Some(attr) = &def.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "UpdateTimeToLive: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_the_table_the_store_expects() {
        let def = table_definition(TEMPLATE).unwrap();
        let keys: Vec<_> = def
            .key_schema
            .iter()
            .map(|k| (k.attribute_name(), k.key_type().as_str()))
            .collect();
        assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
        assert_eq!(def.ttl_attribute.as_deref(), Some("ttl"));
        let due = def
            .indexes
            .iter()
            .find(|i| i.index_name() == "due-index")
            .unwrap();
        let keys: Vec<_> = due
            .key_schema()
            .iter()
            .map(|k| k.attribute_name())
            .collect();
        assert_eq!(keys, ["duePk", "dueAt"]);
        // The no-show sweep's sparse index, and the change stream events come from.
        let notice = def
            .indexes
            .iter()
            .find(|i| i.index_name() == "notice-index")
            .unwrap();
        let keys: Vec<_> = notice
            .key_schema()
            .iter()
            .map(|k| k.attribute_name())
            .collect();
        assert_eq!(keys, ["noticePk", "noticeAt"]);
        assert_eq!(def.stream_view, Some(StreamViewType::NewAndOldImages));
    }

    #[test]
    fn the_template_routes_each_route_to_the_function_that_serves_it() {
        use telemeet::http::router::{ROUTES, route};
        let (mut wired, fallbacks): (Vec<_>, Vec<_>) = http_routes(TEMPLATE)
            .unwrap()
            .into_iter()
            .partition(|(_, method, _)| method != "ANY");
        wired.sort();
        // Wrong methods and unknown paths reach a function too, which answers the contract's
        // 405 / 404 body.
        let mut fallback_paths: Vec<&str> = fallbacks.iter().map(|(_, _, p)| p.as_str()).collect();
        fallback_paths.sort_unstable();
        fallback_paths.dedup();
        let mut expected_fallbacks: Vec<&str> =
            ROUTES.iter().map(|(_, p)| *p).chain(["$default"]).collect();
        expected_fallbacks.sort_unstable();
        expected_fallbacks.dedup();
        assert_eq!(fallback_paths, expected_fallbacks);
        let mut expected: Vec<(String, String, String)> = ROUTES
            .iter()
            .map(|(method, path)| {
                let concrete = path
                    .replace("{appointmentId}", "a")
                    .replace("{meetingId}", "m");
                let owner = route(&method.parse().unwrap(), &concrete)
                    .unwrap()
                    .route
                    .owner();
                (
                    owner.name().to_owned(),
                    (*method).to_owned(),
                    (*path).to_owned(),
                )
            })
            .collect();
        expected.sort();
        assert_eq!(wired, expected);
    }

    /// DESIGN.md's route tables (../shared/DESIGN.md: HTTP API, Organisations), route by route.
    const DESIGN_ROUTES: [(&str, &str); 26] = [
        ("PUT", "/appointments/{appointmentId}/meeting"),
        ("PUT", "/conversations/{conversationId}/meeting"),
        ("GET", "/appointments/{appointmentId}/meeting"),
        ("GET", "/conversations/{conversationId}/meeting"),
        ("GET", "/meetings/{meetingId}"),
        ("GET", "/meetings/{meetingId}/link"),
        ("PATCH", "/meetings/{meetingId}"),
        ("DELETE", "/meetings/{meetingId}"),
        ("POST", "/meetings/{meetingId}/start"),
        ("POST", "/meetings/{meetingId}/end"),
        ("GET", "/users/{userId}/meetings"),
        ("GET", "/stats"),
        ("POST", "/webhooks/zoom"),
        ("POST", "/webhooks/zoom/{orgId}"),
        ("PUT", "/org/providers/{provider}"),
        ("GET", "/org/providers"),
        ("DELETE", "/org/providers/{provider}"),
        ("PUT", "/org/settings"),
        ("GET", "/org/settings"),
        ("PUT", "/org/hosts/{userId}"),
        ("GET", "/org/hosts/{userId}"),
        ("DELETE", "/org/hosts/{userId}"),
        ("GET", "/org/hosts"),
        ("POST", "/org/webhooks"),
        ("GET", "/org/webhooks"),
        ("DELETE", "/org/webhooks/{id}"),
    ];

    /// Routes the template serves that DESIGN.md's tables do not list (issue 17, item 1: a
    /// subscription's secret rotation).
    const BEYOND_DESIGN: [(&str, &str); 1] = [("POST", "/org/webhooks/{id}/rotate")];

    #[test]
    fn every_design_route_is_mapped_to_a_function_in_the_template() {
        let mut wired: Vec<(String, String)> = http_routes(TEMPLATE)
            .unwrap()
            .into_iter()
            .filter(|(_, method, _)| method != "ANY")
            .map(|(_, m, p)| (m, p))
            .collect();
        wired.sort();
        let mut design: Vec<(String, String)> = DESIGN_ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        design.sort();
        let mut served = design.clone();
        served.extend(
            BEYOND_DESIGN
                .iter()
                .map(|(m, p)| ((*m).to_owned(), (*p).to_owned())),
        );
        served.sort();
        assert_eq!(wired, served);
        // Where the contract sits beside the checkout, the list above must still be its table.
        let contract =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/DESIGN.md");
        if let Ok(text) = std::fs::read_to_string(&contract) {
            let mut listed = design_table_routes(&text);
            for (m, p) in BEYOND_DESIGN {
                assert!(
                    !listed.contains(&(m.to_owned(), p.to_owned())),
                    "{m} {p} is in DESIGN.md now: drop it from BEYOND_DESIGN"
                );
            }
            listed.sort();
            assert_eq!(listed, design, "DESIGN.md's routes changed");
        }
    }

    /// The routes of DESIGN.md's route tables: `METHOD /path` cells, several per cell
    /// separated by `, ` or ` · `, where a bare method repeats the path before it.
    fn design_table_routes(text: &str) -> Vec<(String, String)> {
        let mut listed = Vec::new();
        let methods = ["GET", "PUT", "POST", "PATCH", "DELETE"];
        for cell in text
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(" |").next())
        {
            let mut last_path: Option<String> = None;
            for item in cell.split([',', '·']).map(str::trim) {
                let (method, path) = item.split_once(' ').unwrap_or((item, ""));
                if !methods.contains(&method) {
                    continue;
                }
                let path = match path.split('?').next().unwrap_or(path) {
                    p if p.starts_with('/') => p.to_owned(),
                    _ => match &last_path {
                        Some(p) => p.clone(),
                        None => continue,
                    },
                };
                last_path = Some(path.clone());
                listed.push((method.to_owned(), path));
            }
        }
        listed.sort();
        listed.dedup();
        listed
    }

    #[test]
    fn only_loopback_endpoints_count_as_local() {
        assert!(is_loopback_endpoint("http://127.0.0.1:5000"));
        assert!(is_loopback_endpoint("http://localhost:5000/"));
        assert!(is_loopback_endpoint("http://[::1]:5000"));
        assert!(!is_loopback_endpoint(
            "https://dynamodb.us-east-1.amazonaws.com"
        ));
        assert!(!is_loopback_endpoint("http://10.0.0.5:8000"));
    }
}

//! The table's change stream as Lambda hands it over (and as `GetRecords` answers it, for
//! the local stack): records with DynamoDB-JSON images, turned back into meetings.

use crate::domain::Meeting;
use crate::store::StoreError;
use crate::store::dynamo::items::{self, MeetingItem};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
pub struct StreamBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    #[serde(default)]
    pub dynamodb: Change,
}

#[derive(Debug, Default, Deserialize)]
pub struct Change {
    #[serde(rename = "NewImage", default)]
    pub new_image: Option<Map<String, Value>>,
    #[serde(rename = "OldImage", default)]
    pub old_image: Option<Map<String, Value>>,
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: String,
    /// Epoch seconds (Lambda) or a float of them; when the change was made.
    #[serde(rename = "ApproximateCreationDateTime", default)]
    pub created: Option<Value>,
}

impl StreamRecord {
    /// The meeting before and after the change, when this record is a meeting's (other
    /// items and removals mean nothing to the platform).
    pub fn meeting_change(&self) -> Result<Option<(Option<Meeting>, Meeting)>, StoreError> {
        let Some(after) = self.dynamodb.new_image.as_ref().map(meeting).transpose()? else {
            return Ok(None);
        };
        let Some(after) = after else {
            return Ok(None);
        };
        let before = match &self.dynamodb.old_image {
            Some(img) => meeting(img)?,
            None => None,
        };
        Ok(Some((before, after)))
    }

    pub fn at(&self) -> Option<DateTime<Utc>> {
        let secs = self.dynamodb.created.as_ref()?.as_f64()?;
        // Whole milliseconds of a float of seconds.
        #[expect(clippy::cast_possible_truncation, reason = "epoch ms fit in i64")]
        DateTime::from_timestamp_millis((secs * 1000.0) as i64)
    }
}

fn meeting(image: &Map<String, Value>) -> Result<Option<Meeting>, StoreError> {
    let item =
        to_item(image).ok_or_else(|| StoreError::malformed("stream image", "not DynamoDB JSON"))?;
    if item
        .get("type")
        .and_then(|t| t.as_s().ok())
        .map(String::as_str)
        != Some("meeting")
    {
        return Ok(None);
    }
    Ok(Some(
        items::read::<MeetingItem>("meeting", item)?.into_meeting(),
    ))
}

fn to_item(image: &Map<String, Value>) -> Option<HashMap<String, AttributeValue>> {
    image
        .iter()
        .map(|(k, v)| Some((k.clone(), attribute(v)?)))
        .collect()
}

/// One DynamoDB-JSON value (`{"S":"x"}`, `{"N":"1"}`, `{"M":{…}}`, …).
fn attribute(v: &Value) -> Option<AttributeValue> {
    let (kind, inner) = v.as_object()?.iter().next()?;
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    Some(match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "M" => AttributeValue::M(to_item(inner.as_object()?)?),
        "L" => AttributeValue::L(
            inner
                .as_array()?
                .iter()
                .map(attribute)
                .collect::<Option<_>>()?,
        ),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        _ => return None,
    })
}

// The Node.js peer of telemeet's benchmark (issue 8): the participant-link and the Zoom
// webhook operations written the way the seeds' Node backends would (AWS SDK v3 document
// client, jsonwebtoken, node:crypto), as a Lambda handler module: clients built at import,
// secrets cached per container for 300 s (like telemeet). Since issue 18 its webhook does
// telemeet's work the way telemeet does it: a dedupe mark, the meeting's version (never
// backwards) and a stats counter, in one read and one transaction, so the side-by-side
// ratio is of the same job. Run under aws-lambda-ric
// (`handlers.link`, `handlers.webhook`) or, where that does not build, under loop.mjs.

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { SecretsManagerClient, GetSecretValueCommand } from "@aws-sdk/client-secrets-manager";
import jwt from "jsonwebtoken";
import crypto from "node:crypto";

const table = process.env.TABLE_NAME;
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const secretsManager = new SecretsManagerClient({});
const cache = new Map(); // secret id -> { value, at }: per container, 300 s, like telemeet

const secret = async (id) => {
  const hit = cache.get(id);
  if (hit && Date.now() - hit.at < 300_000) return hit.value;
  const out = await secretsManager.send(new GetSecretValueCommand({ SecretId: id, VersionStage: "AWSCURRENT" }));
  const value = JSON.parse(out.SecretString);
  cache.set(id, { value, at: Date.now() });
  return value;
};
const json = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
const header = (event, name) => event.headers?.[name] ?? event.headers?.[name.toLowerCase()];

export const link = async (event) => {
  const keys = await secret(process.env.AUTH_SECRET_ID);
  const token = (header(event, "authorization") ?? "").replace(/^Bearer\s+/i, "");
  let claims;
  try {
    claims = jwt.verify(token, keys.hs256Secret, {
      algorithms: ["HS256"],
      issuer: keys.issuer,
      audience: keys.audience,
    });
  } catch {
    return json(401, { error: { code: "UNAUTHENTICATED" } });
  }
  const meetingId = event.rawPath.split("/")[2];
  const { Item: meeting } = await ddb.send(
    new GetCommand({ TableName: table, Key: { pk: `MTG#${meetingId}`, sk: "MEETING" }, ConsistentRead: true }),
  );
  const member = meeting && (meeting.hostUserId === claims.sub || meeting.participantUserIds?.includes(claims.sub));
  if (!meeting || meeting.orgId !== claims.org || !member) return json(404, { error: { code: "NOT_FOUND" } });
  if (!["scheduled", "started"].includes(meeting.status)) return json(409, { error: { code: "MEETING_NOT_JOINABLE" } });
  return json(200, { url: meeting.joinUrl, role: "participant", password: meeting.password });
};

export const webhook = async (event) => {
  const { secretToken } = await secret(process.env.ZOOM_WEBHOOK_SECRET_ID);
  const body = event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : (event.body ?? "");
  const timestamp = header(event, "x-zm-request-timestamp") ?? "";
  const signature = header(event, "x-zm-signature") ?? "";
  const expected = `v0=${crypto.createHmac("sha256", secretToken).update(`v0:${timestamp}:${body}`).digest("hex")}`;
  const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) <= 300;
  const same = signature.length === expected.length && crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
  if (!fresh || !same) return json(401, { error: { code: "UNAUTHENTICATED" } });
  const delivery = JSON.parse(body);
  const zoomId = String(delivery.payload?.object?.id ?? "");
  const { Item: owner } = await ddb.send(
    new GetCommand({ TableName: table, Key: { pk: `PMID#zoom#${zoomId}`, sk: "PMID" }, ConsistentRead: true }),
  );
  if (!owner) return json(200, { ok: true });
  if (delivery.event === "meeting.participant_joined") await joined(delivery, owner);
  return json(200, { ok: true });
};


const JOINABLE = ["scheduled", "started"];

const read = async (Key) => (await ddb.send(new GetCommand({ TableName: table, Key, ConsistentRead: true }))).Item;
const DEDUPE_KEEP_S = 3 * 86_400;

// One join, exactly once and never backwards, in telemeet's two calls: the provider-id
// entry (read above) holds the meeting as last saved; one transaction changes the meeting if
// it is still at that version, writes the delivery's mark if absent (or past its ttl), the
// entry's copy and a stats shard. A refused mark is a redelivery; a refused version is
// re-read and applied again, as telemeet does (it takes the meeting from the refusal).
const joined = async (delivery, entry) => {
  const who = delivery.payload?.object?.participant ?? {};
  const fact = `${delivery.event}|${delivery.payload?.object?.uuid}|${who.participant_uuid ?? who.user_id}|${delivery.event_ts}`;
  const markKey = { pk: `WHK#${crypto.createHash("sha256").update(fact).digest("hex")}`, sk: "WHK" };
  const meetingKey = { pk: `MTG#${entry.meetingId}`, sk: "MEETING" };
  let meeting = entry.meeting ?? (await read(meetingKey));
  for (let attempt = 0; attempt < 5; attempt++) {
    if (!meeting || !JOINABLE.includes(meeting.status)) return;
    const now = Math.floor(Date.now() / 1000);
    // updatedAt in telemeet's format (RFC 3339 with milliseconds, as `new Date().toISOString()`
    // writes it): the record is telemeet's, and its cleanup must still read it afterwards.
    const next = { ...meeting, joins: (meeting.joins ?? 0) + 1, version: meeting.version + 1, updatedAt: new Date().toISOString() };
    const { joinUrl, hostUrl, hostUrlFetchedAt, password, ...copy } = next;
    const shard = crypto.createHash("sha256").update(entry.meetingId).digest()[0] % 8;
    try {
      await ddb.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: table,
                Key: meetingKey,
                UpdateExpression: "SET joins = :joins, version = :next, updatedAt = :at",
                ConditionExpression: "version = :seen",
                ExpressionAttributeValues: { ":joins": next.joins, ":seen": meeting.version, ":next": next.version, ":at": next.updatedAt },
              },
            },
            {
              Put: {
                TableName: table,
                Item: { ...markKey, type: "mark", meetingId: entry.meetingId, ttl: now + DEDUPE_KEEP_S },
                ConditionExpression: "attribute_not_exists(pk) OR #ttl <= :now",
                ExpressionAttributeNames: { "#ttl": "ttl" },
                ExpressionAttributeValues: { ":now": now },
              },
            },
            { Put: { TableName: table, Item: { ...entry, meeting: copy } } },
            {
              Update: {
                TableName: table,
                Key: { pk: `STATS#${meeting.orgId}`, sk: `SHARD#${shard}` },
                UpdateExpression: "ADD joins :one",
                ExpressionAttributeValues: { ":one": 1 },
              },
            },
          ],
        }),
      );
      return;
    } catch (e) {
      if (e.name !== "TransactionCanceledException") throw e;
      const [version, mark] = e.CancellationReasons ?? [];
      if (mark?.Code === "ConditionalCheckFailed") return;
      if (version?.Code === "ConditionalCheckFailed") meeting = await read(meetingKey);
    }
  }
  throw new Error("a join kept conflicting");
};

// The Node.js peer of telemeet's benchmark (issue 8): the participant-link and the Zoom
// webhook operations written the way the seeds' Node backends would (AWS SDK v3 document
// client, jsonwebtoken, node:crypto), as a Lambda handler module: clients built at import,
// secrets cached per container for 300 s (like telemeet). Since issue 18 its webhook does
// telemeet's work: a dedupe mark, the meeting's version (never backwards) and a stats
// counter, in one transaction, so the side-by-side ratio is of the same job. Run under aws-lambda-ric
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
  if (delivery.event === "meeting.participant_joined") await joined(delivery, owner.meetingId);
  return json(200, { ok: true });
};


const JOINABLE = ["scheduled", "started"];
const DEDUPE_KEEP_S = 3 * 86_400;

// One join, exactly once and never backwards: the delivery's mark must be absent (or past
// its ttl), the meeting still at the version read and joinable; the mark, the meeting and a
// stats shard change in one transaction. A lost race is re-read, as telemeet does.
const joined = async (delivery, meetingId) => {
  const who = delivery.payload?.object?.participant ?? {};
  const fact = `${delivery.event}|${delivery.payload?.object?.uuid}|${who.participant_uuid ?? who.user_id}|${delivery.event_ts}`;
  const markKey = { pk: `WHK#${crypto.createHash("sha256").update(fact).digest("hex")}`, sk: "WHK" };
  for (let attempt = 0; attempt < 5; attempt++) {
    const now = Math.floor(Date.now() / 1000);
    const { Item: mark } = await ddb.send(new GetCommand({ TableName: table, Key: markKey, ConsistentRead: true }));
    if (mark && mark.ttl > now) return;
    const { Item: meeting } = await ddb.send(
      new GetCommand({ TableName: table, Key: { pk: `MTG#${meetingId}`, sk: "MEETING" }, ConsistentRead: true }),
    );
    if (!meeting || !JOINABLE.includes(meeting.status)) return;
    const shard = crypto.createHash("sha256").update(meetingId).digest()[0] % 8;
    try {
      await ddb.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: table,
                Key: { pk: `MTG#${meetingId}`, sk: "MEETING" },
                UpdateExpression: "SET joins = if_not_exists(joins, :zero) + :one, version = :next, updatedAt = :at",
                ConditionExpression: "version = :seen",
                ExpressionAttributeValues: { ":zero": 0, ":one": 1, ":seen": meeting.version, ":next": meeting.version + 1, ":at": Date.now() },
              },
            },
            {
              Put: {
                TableName: table,
                Item: { ...markKey, type: "mark", meetingId, ttl: now + DEDUPE_KEEP_S },
                ConditionExpression: "attribute_not_exists(pk) OR #ttl <= :now",
                ExpressionAttributeNames: { "#ttl": "ttl" },
                ExpressionAttributeValues: { ":now": now },
              },
            },
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
    }
  }
  throw new Error("a join kept conflicting");
};

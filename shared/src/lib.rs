//! # telemeet
//!
//! One video room per telehealth visit, with role-specific links. This crate holds
//! everything the Lambda functions run; `functions/*/src/main.rs` only build an [`App`]
//! once and hand events to [`http::handle`], [`http::webhook::handle`] or [`cleanup::run`].
//!
//! ## Layers (hexagonal)
//!
//! ```text
//! http (in/out)  →  service (use cases)  →  domain (pure rules)
//!                        ↓ ports
//!   store::{ClaimStore, MeetingStore, MarkStore, MemberIndex, StatsStore, DueIndex, TokenStore}
//!   providers::MeetingProvider   secrets::SecretSource   clock::Clock   ids::IdGenerator
//!                        ↓ adapters
//!   store::dynamo (DynamoDB) · store::memory (tests) · providers::{zoom, zoho, jitsi}
//!   secrets::SecretsManagerSource · clock::{SystemClock, ManualClock}
//! ```
//!
//! - [`http`]: the entry points inside one envelope ([`http::envelope`]: span, final log
//!   line, error body); the route table ([`http::router`]); one handler file per route group
//!   ([`http::routes`]); JSON shapes ([`http::resource`]); every layer's error mapped to the
//!   contract's once ([`http::error`]); the Zoom webhook door ([`http::webhook`]).
//! - [`service`]: one module per use case: [`service::provision`], [`service::links`],
//!   [`service::manage`], [`service::list`], [`service::events`]; errors are
//!   [`service::ServiceError`] (a domain refusal, or a store or provider failure).
//! - [`domain`]: the rules, pure and table-tested: who may do what ([`domain::policy`]),
//!   the claim rule of guarantee 1 ([`domain::claim`]), statuses, transitions and when a
//!   meeting is due ([`domain::meeting`]), a provider event applied ([`domain::event`]),
//!   counters ([`domain::stats`]), request bodies ([`domain::request`]).
//! - [`store`]: the narrow ports and their adapters; every key is built in
//!   [`store::keys`]; DynamoDB items are serde structs ([`store::dynamo::items`]), one module
//!   per aggregate.
//! - [`providers`]: the provider port; Zoom and Zoho on one OAuth skeleton
//!   ([`providers::api`]) under one retry policy ([`providers::retry`]); Jitsi's JWT links.
//! - [`clock`]: the one time port (wall time, monotonic instants, waits, deadlines).
//! - [`cleanup`]: the weekly cleanup over the due index, paced under a provider rate.
//! - [`notify`]: events to the platform: the stream routed to subscriptions, signed
//!   deliveries through SQS, the no-show sweep.
//! - [`tls`]: one TLS configuration (compiled-in roots) for reqwest and the AWS SDK.
//! - [`auth`], [`secrets`], [`config`], [`app`] (wiring), [`telemetry`] and [`metrics`].
//!
//! A route's way through the code: `http::router` (its line) → `http::routes::<group>` (its
//! handler) → `service::<use case>` → `domain::<rule>` → `store::<port>` →
//! `store::dynamo::<aggregate>` (its table access).
//!
//! ## The table (single-table design)
//!
//! One DynamoDB table, keys `pk` (S) and `sk` (S), TTL attribute `ttl` (N, epoch seconds),
//! two sparse GSIs, `due-index` (`duePk` S, `dueAt` N, keys only) and `notice-index`
//! (`noticePk` S, `noticeAt` N, keys only), and a stream (`NEW_AND_OLD_IMAGES`) whose meeting
//! changes are the platform's events ([`notify`]). Every access pattern of the contract maps
//! onto a key; nothing on a request path scans.
//!
//! | item | `pk` | `sk` | what it holds |
//! |---|---|---|---|
//! | meeting | `MTG#{meetingId}` | `MEETING` | the meeting, provider links, `version`, `roomClosedAt` (a conversation room deleted at the provider); `duePk`/`dueAt` while not archived; event facts `calls`, `lastCaller`, `waiting`, `noShowAfterMinutes`, `noShowAt`, and `noticePk`/`noticeAt` while a no-show check is pending |
//! | subject claim | `SUBJ#{org}#{appointment\|conversation}#{subjectId}` | `CLAIM` | `state` (`pending`/`ready`/`released`), `meetingId`, `claimToken`, `leaseUntil` (N, epoch ms), `reconcile`, `providerUser` (the host user the attempt creates under) |
//! | provider id | `PMID#{provider}#{providerMeetingId}` | `PMID` | `meetingId`, `orgId` |
//! | membership | `USER#{org}#{userId}` | `AT#{startTime}#{meetingId}` | `meetingId`, `role` |
//! | webhook dedupe | `WHK#{sha256 of event key}` | `WHK` | `ttl` |
//! | stats shard | `STATS#{org}` | `SHARD#{n}` | counters by status, provider and attendance |
//! | provider token | `TOKEN#zoho#{digest of clientId + refresh token}` | `TOKEN` | the Zoho access token sealed (AES-256-GCM, key derived from the client secret), `expiresAt`, refresh lock `lockedUntil`, budget `windowStart`/`refreshes`, `version` |
//! | org profile | `ORG#{org}` | `PROFILE` | settings; each connection's non-secret ids (`connZoom`, `connZoho`, `connJitsi`) |
//! | host entry | `ORG#{org}` | `HOST#{userId}` | `zoomUser`, `zohoPresenter` |
//! | connection entry | `CONNECTIONS` | `{provider}#{org}` | `org`, `provider`: written with the profile's connection, read only by the cleanup |
//! | budget counter | `BUDGET#{counter and window}` | `BUDGET` | `spent`; `ttl` past its window |
//! | event subscription | `ORG#{org}` | `WEBHOOK#{id}` | `url`, `events`, `createdAt`, `disabledAt` (its signing secrets are in Secrets Manager at `{ORG_SECRETS_PREFIX}{org}/webhooks/{id}`) |
//!
//! Access patterns:
//! - **subject → meeting**: `GetItem` (consistent) on the claim, then on the meeting.
//! - **meetingId → meeting**: `GetItem` on `MTG#{id}`.
//! - **provider id → meeting** (webhooks): `GetItem` (consistent) on the provider-id item,
//!   written in the same transaction as the meeting, so an event that arrives straight after
//!   create finds it (a GSI would be eventually consistent).
//! - **user → meetings**: `Query` on `USER#{org}#{userId}`, `sk` between `AT#{from}` and
//!   `AT#{to}`; one membership item per host and participant, moved on reschedule.
//! - **due for cleanup**: `Query` on `due-index`, `duePk` = `DUE#{0..3}` (four shards by
//!   meetingId hash spread the write load), `dueAt <= cutoff`. Only meetings not yet archived
//!   and pending claims carry `duePk`/`dueAt`, so the index holds what may become due and a
//!   query reads only what is due: its cost grows with the due set, not the table.
//!   Conversation meetings whose room is still open at the provider sit in `CLOSE#{0..3}`
//!   instead, due at the window's end (or their end), for the 5-minute close-rooms pass;
//!   closing the room moves them to `DUE#`.
//! - **webhook dedupe**: a put in the change's transaction, conditioned on the mark being
//!   absent or past its `ttl` by the code's clock (guarantee 7).
//! - **shared provider token**: `GetItem` (consistent) on `TOKEN#…`; a refresh first takes the
//!   lock with an `UpdateItem` conditioned on the `version` it read (one container wins), and
//!   stores the new token conditioned on still holding it. The budget (8 refreshes per 10
//!   minutes, below Zoho's 10 per refresh token) is counted in the same item.
//! - **org view** (every create): one `BatchGetItem` of the org profile and the host's entry.
//! - **orgs' own accounts** (cleanup only): `Query` on `CONNECTIONS`, then on each org's
//!   `ORG#{org}` for `HOST#…`: where orphans may be in the orgs' provider accounts.
//! - **events** (never a request path): the stream's meeting changes; an org's subscriptions
//!   by one `Query` on `ORG#{org}` with `begins_with(sk, "WEBHOOK#")`; one subscription by
//!   `GetItem` per delivery; due no-show checks by `Query` on `notice-index`, `noticePk` =
//!   `NOSHOW#{0..3}`, `noticeAt <= now` (only meetings whose check is pending carry them).
//! - **stats**: `Query` on `STATS#{org}` (a fixed number of shards), counters kept with `ADD`
//!   in the transactions that change a meeting's status.
//!
//! ## One meeting per subject (guarantee 1)
//!
//! A `PUT` first reads the claim and follows the claim rule ([`domain::claim::next_step`]).
//! `ready` → the meeting is returned (200). Absent, `released` or `pending` past its lease →
//! the caller claims it with a conditional write (the condition names the exact claim token
//! it read and repeats the takeover table server-side, so exactly one of any number of
//! concurrent callers, in any number of processes, wins). The winner keeps the claim's `meetingId` across takeovers,
//! creates the provider meeting with that id in its agenda marker, then commits claim `ready`,
//! the meeting, the provider-id item and memberships in one transaction conditioned on still
//! holding the claim. A taker-over (the previous holder crashed, or its provider call failed
//! ambiguously) first looks the provider up by marker and adopts what it finds, so a crash
//! after the provider call never produces a second meeting. Losers poll the claim and answer
//! the winner's meeting. A failed provider call releases the claim (marked for reconciliation
//! when the failure was ambiguous) and answers 503 with `Retry-After`.
//!
//! Expiry is the code's (guarantee 7): a lease is compared with the injected clock, never
//! left to TTL.

pub mod app;
pub mod auth;
pub mod cleanup;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod notify;
pub mod providers;
pub mod secrets;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use app::App;

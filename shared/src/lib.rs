//! # telemeet
//!
//! One video room per telehealth visit, with role-specific links. This crate holds
//! everything the Lambda functions run; `functions/*/src/main.rs` only build an [`App`]
//! once and hand requests to [`http::handle`].
//!
//! Layers (hexagonal): [`http`] (requests in, responses out) → [`service`] (the domain
//! rules: provisioning exactly once, links, authorization via [`domain::policy`]) → ports
//! ([`store::MeetingStore`], [`providers::MeetingProvider`], [`secrets::SecretSource`],
//! [`clock::Clock`], [`ids::IdGenerator`]) with adapters for DynamoDB, Secrets Manager and
//! Zoom.
//!
//! ## The table (single-table design)
//!
//! One DynamoDB table, keys `pk` (S) and `sk` (S), TTL attribute `ttl` (N, epoch seconds),
//! and one sparse GSI `due-index` (`duePk` S, `dueAt` N, keys only). Every access pattern of
//! the contract maps onto a key; nothing on a request path scans.
//!
//! | item | `pk` | `sk` | what it holds |
//! |---|---|---|---|
//! | meeting | `MTG#{meetingId}` | `MEETING` | the meeting, provider links, `version`; `duePk`/`dueAt` while not archived |
//! | subject claim | `SUBJ#{org}#{appointment\|conversation}#{subjectId}` | `CLAIM` | `state` (`pending`/`ready`/`released`), `meetingId`, `claimToken`, `leaseUntil` (N, epoch ms), `reconcile` |
//! | provider id | `PMID#{provider}#{providerMeetingId}` | `PMID` | `meetingId`, `orgId` |
//! | membership | `USER#{org}#{userId}` | `AT#{startTime}#{meetingId}` | `meetingId`, `role` |
//! | webhook dedupe | `WHK#{sha256 of event key}` | `WHK` | `ttl` |
//! | stats shard | `STATS#{org}` | `SHARD#{n}` | counters by status, provider and attendance |
//! | provider token | `TOKEN#zoho#{digest of clientId + refresh token}` | `TOKEN` | the Zoho access token sealed (AES-256-GCM, key derived from the client secret), `expiresAt`, refresh lock `lockedUntil`, budget `windowStart`/`refreshes`, `version` |
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
//! - **webhook dedupe**: conditional `PutItem` (`attribute_not_exists(pk)`) with a `ttl`.
//! - **shared provider token**: `GetItem` (consistent) on `TOKEN#…`; a refresh first takes the
//!   lock with an `UpdateItem` conditioned on the `version` it read (one container wins), and
//!   stores the new token conditioned on still holding it. The budget (8 refreshes per 10
//!   minutes, below Zoho's 10 per refresh token) is counted in the same item.
//! - **stats**: `Query` on `STATS#{org}` (a fixed number of shards), counters kept with `ADD`
//!   in the transactions that change a meeting's status.
//!
//! ## One meeting per subject (guarantee 1)
//!
//! A `PUT` first reads the claim. `ready` → the meeting is returned (200). Absent, `released`
//! or `pending` past its lease → the caller claims it with a conditional write (the condition
//! names the exact claim token it read, so exactly one of any number of concurrent callers, in
//! any number of processes, wins). The winner keeps the claim's `meetingId` across takeovers,
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
pub mod error;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod providers;
pub mod secrets;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod webhook;

pub use app::App;
pub use error::ApiError;

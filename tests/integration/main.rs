//! The integration tests, one binary: each file is a module named after what it proves.
//! (One binary instead of one per file: each links the AWS SDK, and twenty copies filled a
//! CI disk and cost twenty links.)

mod adversarial;
mod authentication;
mod budgets;
mod cleanup_fan_out;
mod cleanup_goes_on_past_what_it_cannot_read;
mod conversations;
mod demo_page;
mod deployed_smoke;
mod dev_command;
mod error_bodies;
mod guarantee_10_events_reach_the_platform;
mod guarantee_10_subscriptions_and_ssrf;
mod guarantee_1_one_meeting_per_subject;
mod guarantee_2_role_specific_links;
mod guarantee_3_webhooks_are_verified;
mod guarantee_4_provider_calls_are_bounded;
mod guarantee_5_secrets;
mod guarantee_6_no_phi_leaves_by_default;
mod guarantee_7_expiry_is_the_apps_not_ttls;
mod guarantee_8_cleanup_scales_with_what_is_due;
mod guarantee_9_tenants_never_cross;
mod jitsi_links;
mod local_gateway_doors;
mod meeting_management;
mod observability;
mod openapi_fuzz;
mod seed_flows;
mod template_policies;
mod webhook_round_trips;
mod zoho;
mod zoom_sandbox_conformance;
mod zoom_shared_token;

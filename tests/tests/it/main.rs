//! dLocker workspace integration tests: real `trustee-node` processes on loopback, driven through
//! raw gRPC, the SDK, the `dlocker` CLI and `deploy/local-cluster.sh`.
//!
//! One test binary (modules below) so the workspace links it once. Every test makes its own
//! cluster in its own temporary directory on its own ports, so they run in parallel.

mod admin_listener;
mod approval_wait;
mod backup_durability;
mod browser;
mod cancel_all;
mod cli;
mod cli_owner;
mod corrupted_share;
mod crash_harness;
mod crash_sessions;
mod delete;
mod deposit_rejections;
mod doc_commands;
mod doc_run;
mod document_endpoints;
mod event_stream_limits;
mod example_config;
mod flood_limits;
mod grpc_web;
mod housekeeping;
mod idempotency;
mod local_cluster_script;
mod locker_attest;
mod locker_fetch;
mod locker_holder_touch;
mod locker_pull;
mod locker_refusals_do_not_write;
mod locker_registry_binding;
mod locker_reissue;
mod locker_verify;
mod owner_touch;
mod passkey_change;
mod passkey_reset;
mod pending_ceremony_limits;
mod postgres_backend;
mod postgres_migrate;
mod postgres_replicas;
mod recovery_audit_events;
mod recovery_cancel;
mod recovery_cancel_freshness;
mod recovery_faults;
mod recovery_happy;
mod recovery_other_bank;
mod recovery_refusals;
mod recovery_resume;
mod recovery_staff;
mod recovery_strangers;
mod refusal_codes;
mod rotation_after_recovery;
mod rotation_faults;
mod rotation_happy;
mod rotation_refusals;
mod rotation_squatting;
mod safe_defaults;
mod sdk_client;
mod staff_admin;
mod staff_reload;
mod startup_checks;
mod tls;
mod touch_counts;
mod trustee_replicas;
mod web_sdk_logic;

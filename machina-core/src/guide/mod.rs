//! A guide to Machina in five chapters, for a newcomer who wants a bot or
//! a service running, tested and shut down properly. Every example is a
//! doctest that runs on the [mock runtime](crate::testing::MockRuntime)
//! and asserts what it shows — instants to the millisecond, outcomes,
//! exit codes — so what you read is what `cargo test -p machina-core
//! --doc guide` checks.
//!
//! This module holds documentation only; it has no items.
//!
//! | chapter | what you learn |
//! | --- | --- |
//! | [`first_bot`] | a bot: a concurrent group, an execute under a retry rule, an emit that drives it |
//! | [`virtual_time`] | testing on virtual time: the mock runtime, advancing time, exact instants, one body on every runtime |
//! | [`services`] | services, the supervisor and the entrypoint: dependencies, parallel starts and stops, shutdown timeout, exit codes |
//! | [`adapters`] | choosing an adapter: tokio, smol or async-std, and what each crate gives you |
//! | [`resilience`] | recipes for calls that fail: call stacks, retry rules, circuit breakers, backoff, reading a `CallError` |
//!
//! # The model in one screen
//!
//! - **One runtime value, passed in.** Everything that spawns, sleeps or
//!   reads the clock takes a [`Runtime`](crate::rt::Runtime). An adapter
//!   crate (`machina-tokio`, `machina-smol`, `machina-async-std`) makes one
//!   for a real executor; [`MockRuntime`](crate::testing::MockRuntime)
//!   makes one on virtual time. There is no global runtime, so the same
//!   code runs on each.
//! - **Pure policies, thin waiters.** A concurrent group, a retry rule and
//!   a circuit breaker are state machines fed `now` that answer with a
//!   [`Decision`](crate::decision::Decision): proceed, wait until an
//!   instant, or give up. The [call pipeline](crate::call) does the
//!   waiting, for all of them, in one place.
//! - **Named parts, checked early.** Groups, executes, emits and services
//!   are registered by name; a duplicate name, an unknown group or a
//!   dependency cycle is an error when you register or build, not when the
//!   program has been running for a day.
//! - **Nothing disappears silently.** A run, a shutdown or a stop returns a
//!   report of what finished, what was cancelled and what failed.
//!
//! # Where the ideas come from
//!
//! Machina brings four Python designs to Rust: exmachina (bots of emits and
//! executes, concurrent groups, retry rules), discord.ext.tasks (the
//! periodic [`Loop`](crate::loops::Loop)), facet (services with
//! dependencies) and aiomisc (entrypoint, periodic services, backoff,
//! circuit breaker). Each chapter explains the Rust behaviour first and
//! then how it maps to the Python original, and where it differs.

// Links to items behind features (`test-util`, `io`) resolve only with
// them: the docs are built with every feature (CI, docs.rs), where each
// link is checked.
#![cfg_attr(
    not(all(feature = "test-util", feature = "io")),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod adapters;
pub mod first_bot;
pub mod resilience;
pub mod services;
pub mod virtual_time;

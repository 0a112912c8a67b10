//! Tests of the call pipeline at exact instants of the mock runtime:
//! groups with retry (`limited`), each layer's decisions and refusals in a
//! stack (`layers`), the deadline and the attempt timeout (`time`).

mod layers;
mod limited;

pub(crate) use super::CallStack;
pub(crate) use crate::limit::{ConcurrentGroup, Limits};
pub(crate) use crate::retry::tests::*;
pub(crate) use crate::retry::{Retry, Rule};
pub(crate) use crate::rt::Runtime;
pub(crate) use crate::testing::MockRuntime;
pub(crate) use std::time::Duration;

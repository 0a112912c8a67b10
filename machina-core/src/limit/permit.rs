//! [`Permit`]: the right to run one call, returned to its groups on drop.

use std::fmt;

use super::group::GroupInner;
use super::limiter::Lease;
use super::sync::Arc;

/// The right to run one call in one or more concurrent groups.
///
/// Dropping it (including while unwinding from a panic) frees the call's
/// in-flight slot in every group and wakes the next waiter. The call's
/// start tokens are not returned: they come back on their own one window
/// after the start.
#[must_use = "dropping a Permit ends the call's slot at once"]
pub struct Permit {
    held: Held,
}

enum Held {
    None,
    One(Arc<GroupInner>),
    Many(Vec<Arc<GroupInner>>),
    Lease(Option<Box<dyn Lease>>),
}

impl Permit {
    pub(crate) fn none() -> Self {
        Permit { held: Held::None }
    }

    pub(crate) fn one(group: Arc<GroupInner>) -> Self {
        Permit {
            held: Held::One(group),
        }
    }

    pub(crate) fn many(mut groups: Vec<Arc<GroupInner>>) -> Self {
        match groups.len() {
            0 => Permit::none(),
            1 => Permit::one(groups.remove(0)),
            _ => Permit {
                held: Held::Many(groups),
            },
        }
    }

    /// A permit holding `lease`, a slot of a [`Limiter`](super::Limiter)
    /// that is not a local group: dropping the permit releases it.
    pub fn from_lease(lease: Box<dyn Lease>) -> Self {
        Permit {
            held: Held::Lease(Some(lease)),
        }
    }

    /// The names of the local groups this permit holds a slot in.
    pub fn groups(&self) -> Vec<&str> {
        match &self.held {
            Held::None | Held::Lease(_) => Vec::new(),
            Held::One(g) => vec![&*g.name],
            Held::Many(gs) => gs.iter().map(|g| &*g.name).collect(),
        }
    }
}

fn release(group: &GroupInner) {
    group.release();
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        match &mut self.held {
            Held::None => {}
            Held::One(g) => release(g),
            held => release_other(held),
        }
    }
}

/// [`Permit`]'s drop for the forms held less often: several groups, or a
/// lease (out of line, to keep the one-group drop small enough to inline).
#[inline(never)]
fn release_other(held: &mut Held) {
    match held {
        Held::None | Held::One(_) => {}
        Held::Many(gs) => gs.iter().for_each(|g| release(g)),
        Held::Lease(lease) => {
            if let Some(lease) = lease.take() {
                lease.release();
            }
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("groups", &self.groups())
            .finish()
    }
}

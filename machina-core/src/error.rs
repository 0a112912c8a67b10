//! Errors that user code returns, and one way to say which of them a
//! layer cares about.
//!
//! - [`BoxError`]: what handlers, attempts and services fail with.
//! - [`ErrorMatcher`]: "errors of these types (also found through
//!   `source()`), or for which these predicates hold, or any error". Retry
//!   rules, a `Loop`'s reconnect kinds, backoff filters and the breaker's
//!   failure counting all use it, so an error is matched the same way
//!   everywhere — and always by type ([`TypeId`]), never by name.
//!
//! This module does not decide what happens to a matched error; each layer
//! does.

use std::any::TypeId;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The error type user calls fail with.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

type Predicate = Arc<dyn Fn(&(dyn Error + 'static)) -> bool + Send + Sync>;

/// An error and its `source()` chain, outermost first.
///
/// # Examples
///
/// ```
/// use machina_core::error::chain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("request failed")]
/// struct Request(#[source] std::io::Error);
///
/// let err = Request(std::io::Error::other("reset"));
/// let texts: Vec<String> = chain(&err).map(|e| e.to_string()).collect();
/// assert_eq!(texts, ["request failed", "reset"]);
/// ```
pub fn chain<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// Whether `error` or an error in its `source()` chain is an `E`.
pub fn chain_has<E: Error + 'static>(error: &(dyn Error + 'static)) -> bool {
    chain(error).any(|e| e.is::<E>())
}

/// The first `E` in `error`'s `source()` chain.
pub fn find_in_chain<'a, E: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a E> {
    chain(error).find_map(|e| e.downcast_ref::<E>())
}

/// One test of a matcher.
#[derive(Clone)]
enum Test {
    /// The error or one of its sources is of this type.
    Type {
        id: TypeId,
        name: &'static str,
        test: fn(&(dyn Error + 'static)) -> bool,
    },
    /// A predicate holds.
    Predicate(Predicate),
}

impl Test {
    fn matches(&self, error: &(dyn Error + 'static)) -> bool {
        match self {
            Test::Type { test, .. } => test(error),
            Test::Predicate(p) => p(error),
        }
    }
}

/// Which errors something applies to: **any of** its tests, each either a
/// type (matched through the `source()` chain, by [`TypeId`]) or a
/// predicate. A matcher with no test matches nothing; [`any`](Self::any)
/// matches everything.
///
/// # Examples
///
/// ```
/// use machina_core::error::ErrorMatcher;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("http {0}")]
/// struct Http(u16);
///
/// let retryable = ErrorMatcher::none()
///     .or_type::<std::io::Error>()
///     .or_is(|e: &Http| e.0 >= 500);
/// assert!(retryable.matches(&std::io::Error::other("reset")));
/// assert!(retryable.matches(&Http(503)));
/// assert!(!retryable.matches(&Http(404)));
/// assert!(retryable.names::<std::io::Error>());
/// assert!(ErrorMatcher::any().matches(&Http(404)));
/// ```
#[derive(Clone, Default)]
pub struct ErrorMatcher {
    any: bool,
    tests: Vec<Test>,
}

impl ErrorMatcher {
    /// Matches no error (add tests with the `or_*` methods).
    pub fn none() -> Self {
        ErrorMatcher::default()
    }

    /// Matches every error.
    pub fn any() -> Self {
        ErrorMatcher {
            any: true,
            tests: Vec::new(),
        }
    }

    /// Matches errors of type `E` (or with an `E` in their source chain).
    pub fn of<E: Error + 'static>() -> Self {
        ErrorMatcher::none().or_type::<E>()
    }

    /// Matches errors for which `predicate` holds.
    pub fn when(
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        ErrorMatcher::none().or_when(predicate)
    }

    /// Also matches errors of type `E` (or with an `E` in their source
    /// chain). Adding a type twice changes nothing.
    pub fn or_type<E: Error + 'static>(mut self) -> Self {
        self.add_type::<E>();
        self
    }

    /// Also matches errors for which `predicate` holds.
    pub fn or_when(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.add_when(predicate);
        self
    }

    /// Also matches errors with an `E` in their chain for which
    /// `predicate` holds.
    pub fn or_is<E: Error + 'static>(
        self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.or_when(move |e| find_in_chain::<E>(e).is_some_and(&predicate))
    }

    /// [`or_type`](Self::or_type) in place.
    pub fn add_type<E: Error + 'static>(&mut self) {
        let id = TypeId::of::<E>();
        if self.names_id(id) {
            return;
        }
        self.tests.push(Test::Type {
            id,
            name: std::any::type_name::<E>(),
            test: chain_has::<E>,
        });
    }

    /// [`or_when`](Self::or_when) in place.
    pub fn add_when(
        &mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) {
        self.tests.push(Test::Predicate(Arc::new(predicate)));
    }

    /// Stops matching the type `E` by type; returns whether it was named.
    /// Predicates and "any" are left as they are.
    pub fn remove_type<E: Error + 'static>(&mut self) -> bool {
        let id = TypeId::of::<E>();
        let before = self.tests.len();
        self.tests
            .retain(|t| !matches!(t, Test::Type { id: tid, .. } if *tid == id));
        before != self.tests.len()
    }

    /// Matches nothing any more.
    pub fn clear(&mut self) {
        self.any = false;
        self.tests.clear();
    }

    /// Whether `error` matches.
    pub fn matches(&self, error: &(dyn Error + 'static)) -> bool {
        self.any || self.tests.iter().any(|t| t.matches(error))
    }

    /// Whether one of this matcher's *type* tests matches `error` (its
    /// predicates and "any" are not consulted).
    pub fn matches_by_type(&self, error: &(dyn Error + 'static)) -> bool {
        self.tests
            .iter()
            .any(|t| matches!(t, Test::Type { .. }) && t.matches(error))
    }

    /// Whether this matcher names the type `E` itself (not through a
    /// predicate or "any"): how a layer tells that its user asked for a
    /// kind of refusal explicitly.
    pub fn names<E: Error + 'static>(&self) -> bool {
        self.names_id(TypeId::of::<E>())
    }

    fn names_id(&self, id: TypeId) -> bool {
        self.tests
            .iter()
            .any(|t| matches!(t, Test::Type { id: tid, .. } if *tid == id))
    }

    /// Whether this matcher matches every error.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// Whether this matcher has no test at all (and is not "any").
    pub fn is_empty(&self) -> bool {
        !self.any && self.tests.is_empty()
    }
}

impl fmt::Debug for ErrorMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("any");
        }
        f.debug_list()
            .entries(self.tests.iter().map(|t| match t {
                Test::Type { name, .. } => *name,
                Test::Predicate(_) => "predicate",
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner {0}")]
    struct Inner(u8);

    #[derive(Debug, thiserror::Error)]
    #[error("other")]
    struct Other;

    #[test]
    fn types_match_through_the_source_chain() {
        let m = ErrorMatcher::of::<Inner>();
        assert!(m.matches(&Inner(1)));
        assert!(m.matches(&Outer(Inner(1))));
        assert!(!m.matches(&Other));
        let boxed: BoxError = Box::new(Outer(Inner(2)));
        assert!(m.matches(&*boxed));
    }

    #[test]
    fn tests_combine_as_any_of() {
        let m = ErrorMatcher::of::<Other>().or_is(|e: &Inner| e.0 > 5);
        assert!(m.matches(&Other));
        assert!(m.matches(&Outer(Inner(6))));
        assert!(!m.matches(&Outer(Inner(5))));
        assert!(!ErrorMatcher::none().matches(&Other));
        assert!(ErrorMatcher::any().matches(&Other));
    }

    #[test]
    fn names_is_by_type_not_by_predicate_or_any() {
        let m = ErrorMatcher::when(|e| e.is::<Other>());
        assert!(m.matches(&Other));
        assert!(!m.names::<Other>());
        assert!(!ErrorMatcher::any().names::<Other>());
        assert!(ErrorMatcher::of::<Other>().names::<Other>());
    }

    #[test]
    fn a_type_is_added_once_and_can_be_removed() {
        let mut m = ErrorMatcher::of::<Other>().or_type::<Other>();
        assert_eq!(
            format!("{m:?}"),
            format!("[{:?}]", std::any::type_name::<Other>())
        );
        m.add_when(|_| false);
        assert!(m.remove_type::<Other>());
        assert!(!m.remove_type::<Other>());
        assert!(!m.matches(&Other));
        assert!(!m.is_empty());
        m.clear();
        assert!(m.is_empty());
        assert_eq!(format!("{:?}", ErrorMatcher::any()), "any");
    }
}

//! One retry rule: which errors it matches, how long it waits, how many
//! retries it grants.
//!
//! A rule is built in two steps so that the retry count is never implicit:
//! [`Rule::fixed`] (and friends) give a [`RuleBuilder`], and only
//! [`RuleBuilder::retries`] or [`RuleBuilder::unlimited`] turn it into a
//! [`Rule`]. exmachina's default of "retry until the stack overflows" is
//! available, but must be asked for.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::wait::{Wait, clamped_secs};
use crate::breaker::CircuitOpen;

/// The error type user calls fail with.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

type Predicate = Arc<dyn Fn(&(dyn Error + 'static)) -> bool + Send + Sync>;
type Hint = Arc<dyn Fn(&(dyn Error + 'static)) -> Option<Duration> + Send + Sync>;

/// A type test on an error and its sources.
#[derive(Clone)]
struct TypeMatch {
    name: &'static str,
    test: fn(&(dyn Error + 'static)) -> bool,
}

fn is<E: Error + 'static>(e: &(dyn Error + 'static)) -> bool {
    e.is::<E>()
}

/// The default cap on a server-hinted wait, when the rule sets none.
pub const DEFAULT_HINT_CAP: Duration = Duration::from_secs(300);

/// A rule without a retry count yet; see the module docs.
#[derive(Clone)]
#[must_use = "a rule needs .retries(n) or .unlimited()"]
pub struct RuleBuilder {
    wait: Wait,
    types: Vec<TypeMatch>,
    predicates: Vec<Predicate>,
    hint: Option<Hint>,
    max_wait: Option<Duration>,
}

/// A complete retry rule.
///
/// # Examples
///
/// ```
/// use machina_core::retry::Rule;
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// struct HttpError { status: u16 }
/// impl std::fmt::Display for HttpError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "http {}", self.status)
///     }
/// }
/// impl std::error::Error for HttpError {}
///
/// // exmachina: RetryFixed(HTTPError, wait_time=1, retries=5)
/// let rule = Rule::fixed(Duration::from_secs(1)).on::<HttpError>().retries(5);
/// assert!(rule.matches(&HttpError { status: 503 }));
/// assert!(!rule.matches(&std::io::Error::other("disk")));
///
/// // Only 5xx, with the wait taken from a Retry-After-like hint:
/// let rule = Rule::exponential_jitter(Duration::from_millis(100), Duration::from_secs(10))
///     .when_is(|e: &HttpError| e.status >= 500)
///     .unlimited();
/// assert!(!rule.matches(&HttpError { status: 404 }));
/// ```
#[derive(Clone)]
pub struct Rule {
    builder: RuleBuilder,
    retries: Option<u32>,
}

impl Rule {
    fn with_wait(wait: Wait) -> RuleBuilder {
        RuleBuilder {
            wait,
            types: Vec::new(),
            predicates: Vec::new(),
            hint: None,
            max_wait: None,
        }
    }

    /// Waits `wait` before every retry (exmachina `RetryFixed`).
    pub fn fixed(wait: Duration) -> RuleBuilder {
        Rule::with_wait(Wait::Fixed(wait))
    }

    /// Waits 1, 1, 2, 3, 5, … seconds (exmachina `RetryFibonacci`).
    pub fn fibonacci() -> RuleBuilder {
        Rule::fibonacci_with_base(Duration::from_secs(1))
    }

    /// Waits `base` × 1, 1, 2, 3, 5, ….
    pub fn fibonacci_with_base(base: Duration) -> RuleBuilder {
        Rule::with_wait(Wait::Fibonacci { base })
    }

    /// Waits a uniformly random time in `[min, max]` (exmachina
    /// `RetryRange`); the bounds may come in either order.
    pub fn random_range(min: Duration, max: Duration) -> RuleBuilder {
        Rule::with_wait(Wait::RandomRange { min, max })
    }

    /// [`random_range`](Self::random_range) in seconds, as exmachina takes
    /// them: negative and non-finite bounds clamp to zero.
    pub fn random_range_secs(min: f64, max: f64) -> RuleBuilder {
        Rule::random_range(clamped_secs(min), clamped_secs(max))
    }

    /// Waits exactly `base` first, then uniformly in `[0, min(cap,
    /// base·2ⁿ)]` (exmachina `RetryExponentialAndJitter`).
    pub fn exponential_jitter(base: Duration, cap: Duration) -> RuleBuilder {
        Rule::with_wait(Wait::ExponentialJitter { base, cap })
    }

    /// Retries this rule grants; `None` = unlimited.
    pub fn retries(&self) -> Option<u32> {
        self.retries
    }

    /// The rule's wait sequence.
    pub fn wait(&self) -> Wait {
        self.builder.wait
    }

    /// Whether this rule matches `error`: its type (or a type in its
    /// `source()` chain) is one of the `on` types, if any were given, and
    /// every `when` predicate holds. A rule with neither matches every
    /// error — except a circuit breaker's refusal
    /// ([`CircuitOpen`]), which only a rule naming it
    /// (`.on::<CircuitOpen>()`) retries.
    pub fn matches(&self, error: &(dyn Error + 'static)) -> bool {
        let b = &self.builder;
        // A breaker's refusal is retried only by a rule that names it.
        let names_open = b
            .types
            .iter()
            .any(|t| t.name == std::any::type_name::<CircuitOpen>());
        if !names_open && chain(error).any(|e| e.is::<CircuitOpen>()) {
            return false;
        }
        let type_ok =
            b.types.is_empty() || chain(error).any(|e| b.types.iter().any(|t| (t.test)(e)));
        type_ok && b.predicates.iter().all(|p| p(error))
    }

    /// The server-hinted wait for `error`, capped by the rule, if the rule
    /// takes hints and the error carries one.
    pub fn hinted_wait(&self, error: &(dyn Error + 'static)) -> Option<Duration> {
        let b = &self.builder;
        let hint = b.hint.as_ref()?(error)?;
        Some(hint.min(b.max_wait.unwrap_or(DEFAULT_HINT_CAP)))
    }

    /// The cap on any wait of this rule, if one was set.
    pub fn max_wait(&self) -> Option<Duration> {
        self.builder.max_wait
    }
}

/// An error and its `source()` chain.
fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

impl RuleBuilder {
    /// Matches errors of type `E` (or with an `E` in their source chain).
    /// Several `on` calls match any of the types.
    pub fn on<E: Error + 'static>(mut self) -> Self {
        self.types.push(TypeMatch {
            name: std::any::type_name::<E>(),
            test: is::<E>,
        });
        self
    }

    /// Matches only errors for which `predicate` holds (exmachina
    /// `filter`). Several predicates must all hold.
    pub fn when(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicates.push(Arc::new(predicate));
        self
    }

    /// Matches errors of type `E` for which `predicate` holds — `on::<E>()`
    /// and a typed `when` in one.
    pub fn when_is<E: Error + 'static>(
        self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.on::<E>().when(move |e| {
            chain(e)
                .find_map(|e| e.downcast_ref::<E>())
                .is_some_and(&predicate)
        })
    }

    /// Takes the wait from the error when it carries one (a `Retry-After`
    /// value, say) instead of the rule's own sequence; capped by
    /// [`max_wait`](Self::max_wait), or [`DEFAULT_HINT_CAP`] without one.
    pub fn after(
        mut self,
        hint: impl Fn(&(dyn Error + 'static)) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        self.hint = Some(Arc::new(hint));
        self
    }

    /// [`after`](Self::after) with a typed error.
    pub fn after_is<E: Error + 'static>(
        self,
        hint: impl Fn(&E) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        self.after(move |e| chain(e).find_map(|e| e.downcast_ref::<E>()).and_then(&hint))
    }

    /// Caps every wait of this rule, hinted or not.
    pub fn max_wait(mut self, cap: Duration) -> Self {
        self.max_wait = Some(cap);
        self
    }

    /// Grants `n` retries: at most `n + 1` attempts charged to this rule.
    pub fn retries(self, n: u32) -> Rule {
        Rule {
            builder: self,
            retries: Some(n),
        }
    }

    /// Grants unlimited retries. Unlimited must be asked for explicitly.
    pub fn unlimited(self) -> Rule {
        Rule {
            builder: self,
            retries: None,
        }
    }
}

impl fmt::Debug for RuleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleBuilder")
            .field("wait", &self.wait)
            .field("on", &self.types.iter().map(|t| t.name).collect::<Vec<_>>())
            .field("predicates", &self.predicates.len())
            .field("hinted", &self.hint.is_some())
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("rule", &self.builder)
            .field("retries", &self.retries)
            .finish()
    }
}

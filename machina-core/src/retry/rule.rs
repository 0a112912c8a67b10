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

use crate::decision::Refusal;
use crate::error::{ErrorMatcher, chain_has, find_in_chain};
use crate::rt::RuntimeRng;
use crate::waits::{Wait, Waits, clamped_secs};

type Hint = Arc<dyn Fn(&(dyn Error + 'static)) -> Option<Duration> + Send + Sync>;

/// The default cap on a server-hinted wait, when the rule sets none.
pub const DEFAULT_HINT_CAP: Duration = Duration::from_secs(300);

/// A rule without a retry count yet; see the module docs.
#[derive(Clone)]
#[must_use = "a rule needs .retries(n) or .unlimited()"]
pub struct RuleBuilder {
    wait: Wait,
    /// The `on` types (any of); empty = every type.
    types: ErrorMatcher,
    /// The `when` predicates (all of).
    predicates: Vec<ErrorMatcher>,
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
            types: ErrorMatcher::none(),
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

    /// Waits by any [`Wait`] sequence.
    pub fn waiting(wait: Wait) -> RuleBuilder {
        Rule::with_wait(wait)
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
    /// error — except a refusal by another layer (an error carrying a
    /// [`Refusal`] in its chain, such as a circuit breaker's
    /// `CircuitOpen`), which only a rule naming its type
    /// (`.on::<CircuitOpen>()`) retries.
    pub fn matches(&self, error: &(dyn Error + 'static)) -> bool {
        let b = &self.builder;
        if chain_has::<Refusal>(error)
            && !b.types.matches_by_type(error)
            && !b.predicates.iter().any(|p| p.matches_by_type(error))
        {
            return false;
        }
        let type_ok = b.types.is_empty() || b.types.matches(error);
        type_ok && b.predicates.iter().all(|p| p.matches(error))
    }

    /// This rule's waits, drawing randomness from `rng` and capped by
    /// [`max_wait`](RuleBuilder::max_wait) when one is set.
    pub fn waits(&self, rng: RuntimeRng) -> Waits {
        let waits = self.builder.wait.waits(rng);
        match self.builder.max_wait {
            Some(cap) => waits.capped(cap),
            None => waits,
        }
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

impl RuleBuilder {
    /// Matches errors of type `E` (or with an `E` in their source chain).
    /// Several `on` calls match any of the types.
    pub fn on<E: Error + 'static>(mut self) -> Self {
        self.types.add_type::<E>();
        self
    }

    /// Matches only errors for which `predicate` holds (exmachina
    /// `filter`). Several predicates must all hold.
    pub fn when(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicates.push(ErrorMatcher::when(predicate));
        self
    }

    /// Matches only errors that `matcher` matches (with the other `when`
    /// tests, all must hold). A refusal by another layer is matched when
    /// one of `matcher`'s types names it.
    pub fn matching(mut self, matcher: &ErrorMatcher) -> Self {
        self.predicates.push(matcher.clone());
        self
    }

    /// Matches errors of type `E` for which `predicate` holds — `on::<E>()`
    /// and a typed `when` in one.
    pub fn when_is<E: Error + 'static>(
        self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.on::<E>()
            .when(move |e| find_in_chain::<E>(e).is_some_and(&predicate))
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
        self.after(move |e| find_in_chain::<E>(e).and_then(&hint))
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
            .field("on", &self.types)
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

//! Property tests of [`RetryState`], the pure per-call retry bookkeeping.
//!
//! Random [`Retry`] configurations (one to four rules, each with a random
//! wait sequence, optional `on` types, an optional `when` predicate, an
//! optional cap and a retry count or none; an optional `giveup` matcher;
//! an optional budget with random deposits) are fed random failures at
//! random instants. A model written from the docs, not from the code,
//! predicts every decision:
//!
//! - which errors a rule matches, with a refusal (an error carrying a
//!   [`Refusal`] in its chain) matched only by a rule naming a type in that
//!   chain — checked against [`Rule::matches`] on its own too;
//! - the retry is charged to the first matching rule with retries left, and
//!   `remaining` is that rule's count minus the retries it has used;
//! - the give-up reasons: no rule matches, every matching rule is spent,
//!   the `giveup` matcher (asked only when a retry would be made), or the
//!   budget (asked only then too, after `giveup`); a refused retry charges
//!   no rule;
//! - attempts are 1 + the retries granted, never more than 1 + the retries
//!   of the rules that matched;
//! - each wait is the next of the charged rule's own sequence: exact for
//!   fixed and Fibonacci waits and the first exponential one, within the
//!   sequence's bounds otherwise, never past the rule's cap (or, without
//!   one, the sequence's [`Wait::max_wait`]), and never before `now`;
//! - the budget grants and refuses as the docs say: checked exactly
//!   against a copy of the budget fed only the retries the model expects,
//!   and independently against the calls and retries that are surely, or
//!   possibly, in its window;
//! - the same seed and inputs give the same decisions, bit for bit.
//!
//! The default run is proptest's default number of cases per property
//! (`PROPTEST_CASES` overrides it). A long run:
//!
//! ```text
//! PROPTEST_CASES=20000 cargo test -p machina-core --features test-util --release --lib retry::props
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{BudgetState, Retry, Rule};
use crate::decision::{Decision, Reason, Refusal};
use crate::error::{BoxError, ErrorMatcher, chain};
use crate::rt::RuntimeRng;
use crate::waits::Wait;

use crate::test_kit::ms;

/// A failure of one kind; it may carry a refusal as its source, as a
/// client error wrapping a breaker's `CircuitOpen` would.
#[derive(Debug, thiserror::Error)]
#[error("error a")]
struct ErrA {
    #[source]
    refusal: Option<Refusal>,
}

/// A failure of another kind.
#[derive(Debug, thiserror::Error)]
#[error("error b")]
struct ErrB;

/// A failure no rule names.
#[derive(Debug, thiserror::Error)]
#[error("other")]
struct Other;

/// Any error wrapped by a library's own error type.
#[derive(Debug, thiserror::Error)]
#[error("wrapped")]
struct Wrap(#[source] BoxError);

/// The error types a rule or a `giveup` matcher may name, as bits.
const A: u8 = 1;
const B: u8 = 2;
const REFUSAL: u8 = 4;

/// The failures of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `ErrA`.
    A,
    /// `ErrA` with a refusal as its source.
    ARefused,
    /// `ErrB`.
    B,
    /// `ErrB` inside a `Wrap`.
    WrappedB,
    /// `Other`.
    Other,
    /// A refusal inside a `Wrap`, as a breaker's `CircuitOpen` is.
    Refused,
}

impl Kind {
    fn error(self) -> BoxError {
        let refusal = Refusal::new(Reason::Broken, None);
        match self {
            Kind::A => Box::new(ErrA { refusal: None }),
            Kind::ARefused => Box::new(ErrA {
                refusal: Some(refusal),
            }),
            Kind::B => Box::new(ErrB),
            Kind::WrappedB => Box::new(Wrap(Box::new(ErrB))),
            Kind::Other => Box::new(Other),
            Kind::Refused => Box::new(Wrap(Box::new(refusal))),
        }
    }

    /// The nameable types in the error's chain, as bits.
    fn types(self) -> u8 {
        match self {
            Kind::A => A,
            Kind::ARefused => A | REFUSAL,
            Kind::B | Kind::WrappedB => B,
            Kind::Other => 0,
            Kind::Refused => REFUSAL,
        }
    }

    fn refused(self) -> bool {
        self.types() & REFUSAL != 0
    }

    /// Whether the error stands alone (its chain is one error long): what
    /// the `when` predicate of the rules and matchers here tests.
    fn bare(self) -> bool {
        matches!(self, Kind::A | Kind::B | Kind::Other)
    }
}

fn is_bare(error: &(dyn Error + 'static)) -> bool {
    chain(error).count() == 1
}

#[derive(Debug, Clone, Copy)]
enum WaitSpec {
    Fixed(u64),
    Fibonacci(u64),
    Range(u64, u64),
    ExponentialJitter(u64, u64),
}

impl WaitSpec {
    fn wait(self) -> Wait {
        match self {
            WaitSpec::Fixed(d) => Wait::Fixed(ms(d)),
            WaitSpec::Fibonacci(base) => Wait::Fibonacci { base: ms(base) },
            WaitSpec::Range(min, max) => Wait::RandomRange {
                min: ms(min),
                max: ms(max),
            },
            WaitSpec::ExponentialJitter(base, cap) => Wait::ExponentialJitter {
                base: ms(base),
                cap: ms(cap),
            },
        }
    }

    /// The bounds of the `n`-th wait (from 0) of the sequence, uncapped.
    fn bounds(self, n: u32) -> (Duration, Duration) {
        match self {
            WaitSpec::Fixed(d) => (ms(d), ms(d)),
            WaitSpec::Fibonacci(base) => {
                let (mut prev, mut cur) = (0u64, 1u64);
                for _ in 0..n {
                    (prev, cur) = (cur, prev + cur);
                }
                let d = ms(base * cur);
                (d, d)
            }
            WaitSpec::Range(a, b) => (ms(a.min(b)), ms(a.max(b))),
            WaitSpec::ExponentialJitter(base, cap) => {
                if n == 0 {
                    (ms(base), ms(base))
                } else {
                    (Duration::ZERO, ms((base << n).min(cap)))
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RuleSpec {
    wait: WaitSpec,
    /// The `on` types, as bits.
    on: u8,
    /// With `.when(is_bare)`.
    bare_only: bool,
    max_wait: Option<u64>,
    /// `None`: unlimited.
    retries: Option<u32>,
}

impl RuleSpec {
    fn rule(self) -> Rule {
        let mut builder = match self.wait {
            WaitSpec::Fixed(d) => Rule::fixed(ms(d)),
            WaitSpec::Fibonacci(base) => Rule::fibonacci_with_base(ms(base)),
            WaitSpec::Range(min, max) => Rule::random_range(ms(min), ms(max)),
            WaitSpec::ExponentialJitter(base, cap) => Rule::exponential_jitter(ms(base), ms(cap)),
        };
        if self.on & A != 0 {
            builder = builder.on::<ErrA>();
        }
        if self.on & B != 0 {
            builder = builder.on::<ErrB>();
        }
        if self.on & REFUSAL != 0 {
            builder = builder.on::<Refusal>();
        }
        if self.bare_only {
            builder = builder.when(is_bare);
        }
        if let Some(cap) = self.max_wait {
            builder = builder.max_wait(ms(cap));
        }
        match self.retries {
            Some(n) => builder.retries(n),
            None => builder.unlimited(),
        }
    }

    /// Whether the rule matches a failure of `kind`, by the docs of
    /// [`Rule::matches`].
    fn matches(self, kind: Kind) -> bool {
        let named = self.on & kind.types() != 0;
        if kind.refused() && !named {
            return false;
        }
        (self.on == 0 || named) && (!self.bare_only || kind.bare())
    }

    /// The longest wait the rule may ask for.
    fn longest(self) -> Duration {
        self.max_wait
            .map_or_else(|| self.wait.wait().max_wait(), ms)
    }
}

#[derive(Debug, Clone, Copy)]
enum GiveupSpec {
    Any,
    /// Named types, as bits.
    Types(u8),
    /// `when(is_bare)`.
    Bare,
}

impl GiveupSpec {
    fn matcher(self) -> ErrorMatcher {
        match self {
            GiveupSpec::Any => ErrorMatcher::any(),
            GiveupSpec::Types(bits) => {
                let mut matcher = ErrorMatcher::none();
                if bits & A != 0 {
                    matcher.add_type::<ErrA>();
                }
                if bits & B != 0 {
                    matcher.add_type::<ErrB>();
                }
                if bits & REFUSAL != 0 {
                    matcher.add_type::<Refusal>();
                }
                matcher
            }
            GiveupSpec::Bare => ErrorMatcher::when(is_bare),
        }
    }

    fn matches(self, kind: Kind) -> bool {
        match self {
            GiveupSpec::Any => true,
            GiveupSpec::Types(bits) => bits & kind.types() != 0,
            GiveupSpec::Bare => kind.bare(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct BudgetSpec {
    ratio: f64,
    window: Duration,
    min_retries: u32,
    /// Calls deposited at the start.
    initial_calls: u32,
}

impl BudgetSpec {
    fn state(self) -> BudgetState {
        BudgetState::new(self.ratio, self.window, self.min_retries).unwrap()
    }

    /// The budget's bucket (a tenth of its window, as built): how fuzzy the
    /// window's far edge is.
    fn bucket(self) -> Duration {
        (self.window / 10).max(Duration::from_nanos(1))
    }

    fn allowed(self, calls: usize) -> f64 {
        f64::from(self.min_retries) + self.ratio * calls as f64
    }
}

#[derive(Debug, Clone)]
struct Config {
    rules: Vec<RuleSpec>,
    giveup: Option<GiveupSpec>,
    budget: Option<BudgetSpec>,
}

impl Config {
    fn retry(&self) -> Retry {
        let mut retry = self
            .rules
            .iter()
            .fold(Retry::new(), |retry, spec| retry.rule(spec.rule()));
        if let Some(giveup) = self.giveup {
            retry = retry.giveup(giveup.matcher());
        }
        retry
    }
}

/// One failure: after `advance` ms, `deposits` new top-level calls are
/// recorded in the budget (when there is one), then the latest attempt
/// fails with `kind`.
#[derive(Debug, Clone, Copy)]
struct Step {
    advance: u64,
    deposits: u8,
    kind: Kind,
}

/// What the model expects of one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Retry { rule: usize, remaining: Option<u32> },
    GiveUp(Reason),
}

/// How many of the logged instants (offsets from the start) `keep` holds
/// for.
fn count_where(log: &[Duration], keep: impl Fn(Duration) -> bool) -> usize {
    log.iter().filter(|&&at| keep(at)).count()
}

/// Runs one case, checking every decision; gives the decisions.
fn run(
    config: &Config,
    seed: u64,
    steps: &[Step],
    t0: Instant,
) -> Result<Vec<Decision>, TestCaseError> {
    let retry = config.retry();
    let mut state = retry.start(RuntimeRng::from_seed(seed));
    let mut budget = config.budget.map(BudgetSpec::state);
    // Fed only the withdrawals the model expects.
    let mut shadow = config.budget.map(BudgetSpec::state);
    let (mut deposits, mut grants) = (Vec::new(), Vec::new());
    if let Some(spec) = config.budget {
        for _ in 0..spec.initial_calls {
            budget.as_mut().unwrap().deposit(t0);
            shadow.as_mut().unwrap().deposit(t0);
            deposits.push(Duration::ZERO);
        }
    }

    let rules = &config.rules;
    let mut used = vec![0u32; rules.len()];
    let mut ever_matched = vec![false; rules.len()];
    let mut decisions = Vec::with_capacity(steps.len());
    let mut offset = Duration::ZERO;
    for (n, step) in steps.iter().enumerate() {
        offset += ms(step.advance);
        let now = t0 + offset;
        if let (Some(budget), Some(shadow)) = (budget.as_mut(), shadow.as_mut()) {
            for _ in 0..step.deposits {
                budget.deposit(now);
                shadow.deposit(now);
                deposits.push(offset);
            }
        }

        let kind = step.kind;
        let error = kind.error();
        for (i, spec) in rules.iter().enumerate() {
            let (real, model) = (retry.rules()[i].matches(&*error), spec.matches(kind));
            prop_assert_eq!(real, model, "step {}: rule {} on {:?}", n, i, kind);
            ever_matched[i] |= model;
        }
        let charged = (0..rules.len())
            .find(|&i| rules[i].matches(kind) && rules[i].retries.is_none_or(|max| used[i] < max));
        let expected = match charged {
            None if rules.iter().any(|r| r.matches(kind)) => {
                Expected::GiveUp(Reason::RetriesExhausted)
            }
            None => Expected::GiveUp(Reason::NoRuleMatches),
            Some(_) if config.giveup.is_some_and(|g| g.matches(kind)) => {
                Expected::GiveUp(Reason::GiveUpPredicate)
            }
            Some(rule) => {
                // Asked only now that a retry would be made, and once.
                if shadow.as_mut().is_some_and(|s| !s.try_withdraw(now)) {
                    Expected::GiveUp(Reason::BudgetExhausted)
                } else {
                    Expected::Retry {
                        rule,
                        remaining: rules[rule].retries.map(|max| max - used[rule] - 1),
                    }
                }
            }
        };

        let decision = state.on_error(now, &*error, budget.as_mut());
        decisions.push(decision);
        match (expected, decision) {
            (Expected::GiveUp(want), Decision::GiveUp(got)) => {
                prop_assert_eq!(got, want, "step {}: {:?}", n, kind);
            }
            (
                Expected::Retry { rule, remaining },
                Decision::WaitUntil(Refusal {
                    reason:
                        Reason::Retrying {
                            rule: got,
                            remaining: left,
                        },
                    until: Some(until),
                }),
            ) => {
                prop_assert_eq!((got, left), (rule, remaining), "step {}: {:?}", n, kind);
                prop_assert!(until >= now, "step {}: until before now", n);
                let wait = until - now;
                let spec = rules[rule];
                prop_assert!(
                    wait <= spec.longest(),
                    "step {}: rule {} waits {:?}, longer than {:?}",
                    n,
                    rule,
                    wait,
                    spec.longest()
                );
                let (low, high) = spec.wait.bounds(used[rule]);
                let cap = spec.max_wait.map_or(Duration::MAX, ms);
                prop_assert!(
                    (low.min(cap)..=high.min(cap)).contains(&wait),
                    "step {}: rule {} wait #{} is {:?}, not in [{:?}, {:?}]",
                    n,
                    rule,
                    used[rule],
                    wait,
                    low.min(cap),
                    high.min(cap)
                );
                used[rule] += 1;
                grants.push(offset);
            }
            (expected, got) => {
                return Err(TestCaseError::fail(format!(
                    "step {n}: {kind:?}: expected {expected:?}, got {got:?}"
                )));
            }
        }

        prop_assert_eq!(state.retries_used(), &used[..], "step {}", n);
        let granted: u32 = used.iter().sum();
        prop_assert_eq!(state.attempts(), 1 + granted, "step {}", n);
        let most: Option<u32> = (0..rules.len())
            .filter(|&i| ever_matched[i])
            .map(|i| rules[i].retries)
            .sum();
        if let Some(most) = most {
            prop_assert!(
                state.attempts() <= 1 + most,
                "step {}: {} attempts, matching rules grant {}",
                n,
                state.attempts(),
                most
            );
        }

        if let (Some(spec), Some(budget), Some(shadow)) =
            (config.budget, budget.as_ref(), shadow.as_ref())
        {
            // The budget saw exactly what the model's copy saw.
            prop_assert_eq!(format!("{budget:?}"), format!("{shadow:?}"), "step {}", n);
            // Independently of the buckets: every call or retry of the last
            // `window - bucket` is surely in the budget's window, and none
            // older than `window` is.
            let (window, bucket) = (spec.window, spec.bucket());
            let surely = |at: Duration| at + window >= offset + bucket;
            let possibly = |at: Duration| at + window > offset;
            match decision {
                Decision::WaitUntil(_) => {
                    let retries = count_where(&grants, surely);
                    let calls = count_where(&deposits, possibly);
                    prop_assert!(
                        retries as f64 <= spec.allowed(calls),
                        "step {}: retry {} granted with at most {} calls in the window",
                        n,
                        retries,
                        calls
                    );
                }
                Decision::GiveUp(Reason::BudgetExhausted) => {
                    let retries = count_where(&grants, possibly);
                    let calls = count_where(&deposits, surely);
                    prop_assert!(
                        (retries + 1) as f64 > spec.allowed(calls),
                        "step {}: retry refused with at most {} retries and at least {} calls in the window",
                        n,
                        retries,
                        calls
                    );
                }
                _ => {}
            }
        }
    }
    Ok(decisions)
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::A),
        1 => Just(Kind::ARefused),
        3 => Just(Kind::B),
        2 => Just(Kind::WrappedB),
        2 => Just(Kind::Other),
        1 => Just(Kind::Refused),
    ]
}

fn wait_spec() -> impl Strategy<Value = WaitSpec> {
    prop_oneof![
        (0..=3000u64).prop_map(WaitSpec::Fixed),
        (0..=500u64).prop_map(WaitSpec::Fibonacci),
        (0..=3000u64, 0..=3000u64).prop_map(|(a, b)| WaitSpec::Range(a, b)),
        (0..=500u64, 0..=10_000u64).prop_map(|(b, c)| WaitSpec::ExponentialJitter(b, c)),
    ]
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        wait_spec(),
        prop_oneof![3 => Just(0u8), 2 => Just(A), 2 => Just(B), 1 => 0..8u8],
        prop::bool::weighted(0.2),
        prop::option::weighted(0.3, 0..=2000u64),
        prop::option::weighted(0.8, 0..=4u32),
    )
        .prop_map(|(wait, on, bare_only, max_wait, retries)| RuleSpec {
            wait,
            on,
            bare_only,
            max_wait,
            retries,
        })
}

fn giveup_spec() -> impl Strategy<Value = GiveupSpec> {
    prop_oneof![
        1 => Just(GiveupSpec::Any),
        3 => (1..8u8).prop_map(GiveupSpec::Types),
        1 => Just(GiveupSpec::Bare),
    ]
}

fn budget_spec() -> impl Strategy<Value = BudgetSpec> {
    (
        prop_oneof![Just(0.0), Just(0.1), Just(0.5), Just(1.0), 0.0..2.0f64],
        prop_oneof![1..=100u64, 1..=20_000u64].prop_map(ms),
        0..=3u32,
        0..=10u32,
    )
        .prop_map(|(ratio, window, min_retries, initial_calls)| BudgetSpec {
            ratio,
            window,
            min_retries,
            initial_calls,
        })
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop::collection::vec(rule_spec(), 1..=4),
        prop::option::weighted(0.3, giveup_spec()),
        prop::option::weighted(0.4, budget_spec()),
    )
        .prop_map(|(rules, giveup, budget)| Config {
            rules,
            giveup,
            budget,
        })
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        prop_oneof![0..=10u64, 0..=3000u64],
        prop_oneof![3 => Just(0u8), 1 => 1..=3u8],
        kind(),
    )
        .prop_map(|(advance, deposits, kind)| Step {
            advance,
            deposits,
            kind,
        });
    // Fewer than 40 failures: no Fibonacci multiplier nears `u32::MAX`.
    prop::collection::vec(step, 1..=40)
}

fn t0() -> Instant {
    crate::rt::Timer::now(&crate::rt::SystemTimer::new())
}

proptest! {
    #[test]
    fn each_failure_is_decided_as_the_rules_giveup_and_budget_say(
        config in config(),
        seed in any::<u64>(),
        steps in steps(),
    ) {
        let t0 = t0();
        let first = run(&config, seed, &steps, t0)?;
        let again = run(&config, seed, &steps, t0)?;
        prop_assert_eq!(first, again, "same seed and inputs, other decisions");
    }

    #[test]
    fn a_refusal_is_retried_only_by_a_rule_naming_a_type_in_its_chain(
        spec in rule_spec(),
        kind in kind(),
    ) {
        let rule = spec.rule();
        let error = kind.error();
        let matched = rule.matches(&*error);
        prop_assert_eq!(matched, spec.matches(kind));
        if kind.refused() && matched {
            prop_assert!(spec.on & kind.types() != 0, "{:?} matched {:?}", spec, kind);
        }
    }
}

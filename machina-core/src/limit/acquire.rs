//! [`Acquire`]: waiting for a permit in one or several groups, fairly and
//! cancel-safely.
//!
//! Every waiter holds one ticket from a process-wide order of arrival, and
//! each group's queue is ordered by those tickets, so a waiter's age
//! compares the same way in every group. A waiter starts only when, in
//! every one of its groups, no older waiter is queued and the policy
//! admits it; then it takes a slot and a token in all of them together,
//! under all their locks (taken in one global order).
//!
//! **Groups never block each other.** A caller waiting for several groups
//! is queued only in the groups that hold it back — the ones it waits
//! *for*. A group that would admit it does not see it in its queue, so a
//! newcomer to that group alone is not held behind a caller stuck on
//! another group. When a look finds that a group it waited for now admits
//! it but another does not (it was *passed over*), it moves to the queue
//! of the group that blocks, at its place by age. A caller passed over
//! [`PINNED_AFTER`] times stops moving: it queues in all its groups and is
//! served first come first served in each, so a multi-group caller cannot
//! be starved by single-group traffic that keeps its groups busy in turn.
//!
//! Only a waiter first in line sleeps on a window's or a rate's clock; the
//! others wait to be woken when the waiter ahead of them leaves the queue,
//! so one freed slot or token wakes one waiter.
//!
//! In a group of plain slots (no window, no rate), a release **hands its
//! slot** to the waiter first in line when that waiter waits for this
//! group alone: the waiter leaves the queue holding the slot and starts
//! at its next poll, without deciding again. Two releases in a row wake
//! two waiters (not the same head twice). Slots are handed in order of
//! arrival; the waiters handed one start in the order the executor polls
//! them, and the waiters still queued wait until every handed slot is
//! collected (see `Grants` in `queue.rs`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::group::{Commit, GroupInner, GroupState};
use super::permit::Permit;
use super::queue::next_ticket;
use super::sync::{Arc, MutexGuard, lock};
use crate::decision::{Decision, Reason, Refusal};
use crate::rt::Sleep;

/// The future of [`ConcurrentGroup::acquire`](super::ConcurrentGroup::acquire)
/// and [`acquire_all`](super::acquire_all): resolves to a [`Permit`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire {
    /// Deduplicated, in lock order.
    groups: Small<Arc<GroupInner>>,
    /// This caller's place in the order of arrival, once it has waited.
    ticket: Option<u64>,
    /// Per group (several groups only): whether this caller is in its
    /// queue now. With one group, queued = has a ticket.
    queued: Vec<bool>,
    /// Times a group it waited for admitted it while another did not.
    passed_over: u32,
    /// Per group (several groups only): whether it was ever queued there,
    /// for the group's wait statistics.
    waited_in: Vec<bool>,
    /// When this caller started waiting.
    queued_at: Option<Instant>,
    /// A wake-up for when the window opens, while first in line.
    sleep: Option<(Instant, Sleep)>,
    done: bool,
}

/// After this many times passed over, a multi-group caller queues in all
/// its groups and stops giving way (see the module docs).
pub(crate) const PINNED_AFTER: u32 = 2;

/// None, one or several items, without allocating for one (a call in a
/// single group is the common case).
#[derive(Debug, Default)]
enum Small<T> {
    #[default]
    Empty,
    One(T),
    Many(Vec<T>),
}

impl<T> Small<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Small::Empty => &[],
            Small::One(item) => std::slice::from_ref(item),
            Small::Many(items) => items,
        }
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl Small<Arc<GroupInner>> {
    fn into_permit(self) -> Permit {
        match self {
            Small::Empty => Permit::none(),
            Small::One(group) => Permit::one(group),
            Small::Many(groups) => Permit::many(groups),
        }
    }
}

/// What one look at the groups found.
enum Outcome {
    Ready,
    /// Blocked; if only clocks block (no slot, no waiter ahead), the instant
    /// the last window opens.
    Wait(Option<Instant>),
}

impl Acquire {
    /// Waits in one group (no allocation).
    pub(crate) fn one(group: Arc<GroupInner>) -> Self {
        Acquire::with_groups(Small::One(group))
    }

    pub(crate) fn new(mut groups: Vec<Arc<GroupInner>>) -> Self {
        groups.sort_by_key(GroupInner::lock_order);
        groups.dedup_by_key(|g| GroupInner::lock_order(g));
        Acquire::with_groups(if groups.len() == 1 {
            Small::One(groups.remove(0))
        } else {
            Small::Many(groups)
        })
    }

    fn with_groups(groups: Small<Arc<GroupInner>>) -> Self {
        let queued = match &groups {
            Small::Many(groups) => vec![false; groups.len()],
            _ => Vec::new(),
        };
        Acquire {
            groups,
            ticket: None,
            waited_in: queued.clone(),
            queued,
            passed_over: 0,
            queued_at: None,
            sleep: None,
            done: false,
        }
    }

    /// Whether this caller stopped giving way in groups that admit it.
    fn pinned(&self) -> bool {
        self.passed_over >= PINNED_AFTER
    }

    fn lock_all(&self) -> Vec<MutexGuard<'_, GroupState>> {
        self.groups
            .as_slice()
            .iter()
            .map(|g| lock(&g.state))
            .collect()
    }

    /// Starts now in every group or none, ignoring the queue only if it is
    /// empty.
    pub(crate) fn try_now(mut self) -> Result<Permit, Refusal> {
        let Some(first) = self.groups.as_slice().first() else {
            return Ok(Permit::none());
        };
        let now = first.clock_now();
        let groups = self.groups.as_slice();
        let mut guards = self.lock_all();
        for (group, state) in groups.iter().zip(guards.iter_mut()) {
            if state.anyone_waiting() {
                group.count_rejected();
                return Err(Refusal::new(Reason::Queue, None));
            }
        }
        for (group, state) in groups.iter().zip(guards.iter_mut()) {
            if let Err(refused) = group.decide(state, now, false).into_result() {
                group.count_rejected();
                return Err(refused);
            }
        }
        if let Err((i, refused)) = commit_all(groups, &mut guards, now, false) {
            groups[i].count_rejected();
            return Err(refused);
        }
        drop(guards);
        self.done = true;
        Ok(std::mem::take(&mut self.groups).into_permit())
    }

    /// One look at the group(s): takes the permit if this caller may
    /// start, else queues it (or refreshes its waker). `slept_until`: the
    /// instant its timer has just fired for, which the look takes as now
    /// if the clock reads earlier (the groups' clock may be a fast counter
    /// a fraction of a microsecond behind the timer's: see
    /// `GroupInner::clock_now`).
    fn attempt(&mut self, waker: &Waker, slept_until: Option<Instant>) -> Outcome {
        match &self.groups {
            Small::One(group) => attempt_one(
                group,
                &mut self.ticket,
                &mut self.queued_at,
                waker,
                slept_until,
            ),
            _ => {
                let now = at_least(self.groups.as_slice()[0].clock_now(), slept_until);
                self.attempt_all(now, waker)
            }
        }
    }

    /// [`attempt`](Self::attempt) across several groups, under all their
    /// locks.
    fn attempt_all(&mut self, now: Instant, waker: &Waker) -> Outcome {
        let mut guards: Vec<MutexGuard<'_, GroupState>> = self
            .groups
            .as_slice()
            .iter()
            .map(|g| lock(&g.state))
            .collect();
        let mut blocks = vec![false; guards.len()];
        let mut only_clocks_block = true;
        // The latest opening (when only clocks block), and the earliest
        // opening of a group where this caller is first in line: if it
        // waits on a slot elsewhere, it must still look when that group
        // opens, or nobody would (the callers behind it do not sleep).
        let mut opens_at: Option<Instant> = None;
        let mut first_opening: Option<Instant> = None;
        for (i, state) in guards.iter_mut().enumerate() {
            let older_waits = match self.ticket {
                Some(ticket) => state.has_older_than(ticket),
                None => state.anyone_waiting(),
            };
            if older_waits {
                blocks[i] = true;
                only_clocks_block = false;
                continue;
            }
            match self.groups.as_slice()[i].decide(state, now, true) {
                Decision::Proceed => {}
                Decision::WaitUntil(Refusal {
                    reason: Reason::Window | Reason::Rate,
                    until: Some(at),
                }) => {
                    blocks[i] = true;
                    opens_at = Some(opens_at.map_or(at, |prev: Instant| prev.max(at)));
                    first_opening = Some(first_opening.map_or(at, |prev: Instant| prev.min(at)));
                }
                _ => {
                    blocks[i] = true;
                    only_clocks_block = false;
                }
            }
        }
        let groups = self.groups.as_slice();
        if !blocks.contains(&true)
            && let Err((i, refused)) = commit_all(groups, &mut guards, now, true)
        {
            // A slot or the bucket's last token went, without the lock,
            // since `decide`: wait for it.
            blocks[i] = true;
            match refused.until {
                Some(at) => {
                    opens_at = Some(opens_at.map_or(at, |prev: Instant| prev.max(at)));
                    first_opening = Some(first_opening.map_or(at, |prev: Instant| prev.min(at)));
                }
                None => only_clocks_block = false,
            }
        }
        if !blocks.contains(&true) {
            let mut next_heads = Vec::new();
            let waited = self.queued_at.map(|at| now.saturating_duration_since(at));
            for (i, state) in guards.iter_mut().enumerate() {
                if let (Some(waited), true) = (waited, self.waited_in[i]) {
                    state.stats.waited += 1;
                    state.stats.wait_time += waited;
                }
                if let (Some(ticket), true) = (self.ticket, self.queued[i]) {
                    state.waiters.remove(ticket);
                    // The next in line may be able to start too, or must
                    // arm its timer for the window; if only a slot blocks
                    // it, the release of one will wake it, so waking it now
                    // would be a wasted poll.
                    if !slots_full(groups[i].decide(state, now, false)) {
                        next_heads.extend(state.head_waker());
                    }
                }
            }
            drop(guards);
            self.queued.iter_mut().for_each(|q| *q = false);
            next_heads.into_iter().for_each(Waker::wake);
            return Outcome::Ready;
        }
        let ticket = *self.ticket.get_or_insert_with(next_ticket);
        self.queued_at.get_or_insert(now);
        let passed_over = self
            .queued
            .iter()
            .zip(&blocks)
            .any(|(&queued, &blocks)| queued && !blocks);
        if passed_over && !self.pinned() {
            self.passed_over += 1;
        }
        let pinned = self.pinned();
        let mut next_heads = Vec::new();
        let mut look_again = false;
        for (i, state) in guards.iter_mut().enumerate() {
            let wait_here = pinned || blocks[i];
            match (self.queued[i], wait_here) {
                (false, true) => {
                    let slot_free = state.waiters.insert(ticket, waker.clone(), false);
                    self.queued[i] = true;
                    self.waited_in[i] = true;
                    // First in line for a slot that a release gave back
                    // before it could see this waiter: look again.
                    look_again |= slot_free && state.waiters.head() == Some(ticket);
                }
                (true, true) => {
                    if let Some(current) = state.waiters.waker_mut(ticket)
                        && !current.will_wake(waker)
                    {
                        *current = waker.clone();
                    }
                }
                (true, false) => {
                    // This group admits the caller: it no longer waits for
                    // it, so it gives way to whoever is next.
                    let was_head = state.waiters.head() == Some(ticket);
                    state.waiters.remove(ticket);
                    self.queued[i] = false;
                    if was_head {
                        next_heads.extend(state.head_waker());
                    }
                }
                (false, false) => {}
            }
        }
        drop(guards);
        next_heads.into_iter().for_each(Waker::wake);
        if look_again {
            waker.wake_by_ref();
        }
        Outcome::Wait(if only_clocks_block {
            opens_at
        } else {
            first_opening
        })
    }

    fn permit(&mut self) -> Permit {
        self.done = true;
        std::mem::take(&mut self.groups).into_permit()
    }
}

/// [`Acquire::attempt`] in a single group: one lock, no
/// allocation, and the clock read only when the group has a window or
/// a wait is timed.
fn attempt_one(
    group: &GroupInner,
    ticket_slot: &mut Option<u64>,
    queued_at: &mut Option<Instant>,
    waker: &Waker,
    slept_until: Option<Instant>,
) -> Outcome {
    let ticket = *ticket_slot;
    if ticket.is_none() && matches!(group.start_without_lock(), Some(Ok(()))) {
        return Outcome::Ready;
    }
    let mut state = lock(&group.state);
    if let Some(ticket) = ticket
        && state.granted.take(ticket)
    {
        // A release handed this waiter its slot.
        state.waiters.granted_left();
        if let Some(at) = *queued_at {
            state.stats.waited += 1;
            state.stats.wait_time += group.runtime.coarse_now().saturating_duration_since(at);
        }
        // The next in line waited for the handed slots to be collected if
        // a slot is free beside them: it may start now.
        let next = if state.granted.is_empty() && group.on_slots_free() {
            state.head_waker()
        } else {
            None
        };
        drop(state);
        *ticket_slot = None;
        if let Some(next) = next {
            next.wake();
        }
        return Outcome::Ready;
    }
    let ahead = match ticket {
        // Handed slots are older: their callers start first.
        Some(ticket) => state.waiters.head() != Some(ticket) || !state.granted.is_empty(),
        None => state.anyone_waiting(),
    };
    let opens_at = if ahead {
        None
    } else {
        let now = at_least(group.decision_now(), slept_until);
        let decision = match group.decide(&mut state, now, true) {
            Decision::Proceed => match group.commit(&mut state, now, true) {
                Ok(_) => {
                    let mut next = None;
                    if let Some(ticket) = ticket {
                        if let Some(at) = *queued_at {
                            state.stats.waited += 1;
                            // Statistics: the coarse clock (exact on the
                            // mock runtime) spares a precise read per
                            // waiter.
                            state.stats.wait_time +=
                                group.runtime.coarse_now().saturating_duration_since(at);
                        }
                        state.waiters.remove(ticket);
                        // As in `attempt_all`: wake the next in line unless
                        // only a slot blocks it.
                        if !slots_full(group.decide(&mut state, now, false)) {
                            next = state.head_waker();
                        }
                    }
                    drop(state);
                    *ticket_slot = None;
                    if let Some(next) = next {
                        next.wake();
                    }
                    return Outcome::Ready;
                }
                // A slot or the bucket's last token went without the lock
                // since the look.
                Err(refused) => Decision::WaitUntil(refused),
            },
            decision => decision,
        };
        match decision {
            Decision::WaitUntil(Refusal {
                reason: Reason::Window | Reason::Rate,
                until,
            }) => until,
            _ => None,
        }
    };
    match ticket {
        Some(ticket) => {
            if let Some(current) = state.waiters.waker_mut(ticket)
                && !current.will_wake(waker)
            {
                *current = waker.clone();
            }
        }
        None => {
            let ticket = next_ticket();
            let slot_free = state.waiters.insert(ticket, waker.clone(), true);
            *ticket_slot = Some(ticket);
            *queued_at = Some(group.runtime.coarse_now());
            // First in line for a slot that a release gave back before it
            // could see this waiter: look again (see `slots.rs`).
            if slot_free && !ahead {
                waker.wake_by_ref();
            }
        }
    }
    Outcome::Wait(opens_at)
}

/// Starts in every group of `groups` (whose decisions all said proceed),
/// under their locks: groups on slots first, since a slot or a bucket's
/// token may have gone without the lock since the decision — then every
/// slot and token already taken here is given back and the group that
/// refused is named, with its refusal. Policy groups commit last and
/// cannot fail.
fn commit_all(
    groups: &[Arc<GroupInner>],
    guards: &mut [MutexGuard<'_, GroupState>],
    now: Instant,
    promise: bool,
) -> Result<(), (usize, Refusal)> {
    let mut taken: Vec<(usize, Commit)> = Vec::new();
    for i in 0..groups.len() {
        if !groups[i].on_slots() {
            continue;
        }
        match groups[i].commit(&mut guards[i], now, promise) {
            Ok(commit) => taken.push((i, commit)),
            Err(refused) => {
                taken
                    .into_iter()
                    .for_each(|(j, commit)| groups[j].uncommit(commit));
                return Err((i, refused));
            }
        }
    }
    for (group, state) in groups.iter().zip(guards.iter_mut()) {
        if !group.on_slots() {
            // A policy group's commit cannot fail.
            let _ = group.commit(state, now, promise);
        }
    }
    Ok(())
}

/// `now`, or the instant a waiter's timer fired for if that is later.
#[inline]
fn at_least(now: Instant, slept_until: Option<Instant>) -> Instant {
    slept_until.map_or(now, |until| now.max(until))
}

/// Whether only a freed slot can change `decision` (so waking a waiter
/// for it now would be a wasted poll).
fn slots_full(decision: Decision) -> bool {
    matches!(
        decision,
        Decision::WaitUntil(Refusal {
            reason: Reason::InFlight,
            ..
        })
    )
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = &mut *self;
        assert!(!this.done, "Acquire polled after it returned its Permit");
        if this.groups.is_empty() {
            this.done = true;
            return Poll::Ready(Permit::none());
        }
        let mut slept_until = None;
        loop {
            match this.attempt(cx.waker(), slept_until.take()) {
                Outcome::Ready => {
                    this.sleep = None;
                    return Poll::Ready(this.permit());
                }
                Outcome::Wait(None) => {
                    this.sleep = None;
                    return Poll::Pending;
                }
                Outcome::Wait(Some(at)) => {
                    let sleep = match &mut this.sleep {
                        Some((deadline, sleep)) if *deadline == at => sleep,
                        slot => {
                            let runtime = &this.groups.as_slice()[0].runtime;
                            &mut slot.insert((at, runtime.sleep_until(at))).1
                        }
                    };
                    if Pin::new(&mut *sleep).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The window has opened: look again, at no earlier
                    // than the instant slept for.
                    slept_until = Some(at);
                    this.sleep = None;
                }
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else {
            return;
        };
        if self.done {
            return;
        }
        let mut next_heads = Vec::new();
        let mut granted = None;
        for (i, group) in self.groups.as_slice().iter().enumerate() {
            let mut state = lock(&group.state);
            // Counted in every group the caller waited to start in, queued
            // there or not.
            state.stats.abandoned += 1;
            if !self.queued.get(i).copied().unwrap_or(true) {
                continue;
            }
            let was_head = state.waiters.head() == Some(ticket);
            if !state.waiters.remove(ticket) && state.granted.take(ticket) {
                // Handed a slot it will not use: it goes to the next.
                state.waiters.granted_left();
                granted = Some(group);
            }
            if was_head {
                next_heads.extend(state.head_waker());
            }
        }
        if let Some(group) = granted {
            group.return_grant();
        }
        next_heads.into_iter().for_each(Waker::wake);
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field(
                "groups",
                &self
                    .groups
                    .as_slice()
                    .iter()
                    .map(|g| &*g.name)
                    .collect::<Vec<_>>(),
            )
            .field("queued", &self.ticket.is_some())
            .field("passed_over", &self.passed_over)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::task::Waker;

    use super::*;
    use crate::limit::{ConcurrentGroup, Limits};
    use crate::test_kit::ms;
    use crate::testing::MockRuntime;

    /// A group's clock may be a fast counter a fraction of a microsecond
    /// behind the timer's: a waiter whose timer fired for the window's
    /// opening must start then, not be sent back to sleep for the same
    /// instant. Here the clock is held back (the mock's is not advanced),
    /// so only the instant slept for can let it start — in one group, and
    /// in two at once.
    #[test]
    fn a_waiter_woken_by_its_timer_decides_no_earlier_than_it_slept_for() {
        for with_other in [false, true] {
            let rt = MockRuntime::new().runtime();
            let window = Limits::new().max_starts(1, ms(100));
            let one = ConcurrentGroup::new(&rt, "one", window).unwrap();
            let other = ConcurrentGroup::new(&rt, "other", Limits::new().max_in_flight(3)).unwrap();
            let mut groups = vec![one.inner.clone()];
            if with_other {
                groups.push(other.inner.clone());
            }
            let opens = rt.now() + ms(100);
            let waker = Waker::noop();
            drop(one.try_acquire().unwrap());
            let mut waiter = Acquire::new(groups);
            // On the clock, the window is shut: it sleeps for the opening.
            for _ in 0..2 {
                let outcome = waiter.attempt(waker, None);
                assert!(matches!(outcome, Outcome::Wait(Some(at)) if at == opens));
            }
            assert_eq!(one.waiting(), 1);
            // Its timer fired for the opening; the clock still reads before.
            assert!(matches!(waiter.attempt(waker, Some(opens)), Outcome::Ready));
            let permit = waiter.permit();
            assert_eq!((one.in_flight(), one.waiting()), (1, 0));
            assert_eq!(other.in_flight(), u32::from(with_other));
            assert_eq!(
                one.starts_in_window(),
                1,
                "the first start left the window at the opening"
            );
            drop(permit);
            assert_eq!((one.in_flight(), other.in_flight()), (0, 0));
        }
    }
}

//! [`Timeline`]: a picture of what a bot did. A recorder — attached to a
//! bot with [`MachinaBuilder::timeline`](crate::bot::MachinaBuilder::timeline),
//! or fed by hand — keeps each emit's ticks and each execute's call (when
//! it was made, each attempt, how it ended), on the mock runtime's virtual
//! time or a real clock; [`Timeline::render_svg`] draws one lane per group
//! (or emit), a bar per call, marks for retries, and an axis in seconds.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// How a recorded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallEnd {
    /// It returned a value.
    Ok,
    /// It failed (its last error, a timeout, a deadline).
    Failed,
    /// A layer refused it (a group, a breaker).
    Refused,
    /// It was cancelled (its task aborted, its future dropped).
    Cancelled,
}

/// One call of an execute, as recorded.
#[derive(Debug, Clone)]
struct Call {
    lane: usize,
    made: Instant,
    attempts: Vec<Instant>,
    end: Option<(Instant, CallEnd)>,
}

#[derive(Debug, Default)]
struct Record {
    lanes: Vec<String>,
    lane_index: HashMap<String, usize>,
    /// Lanes that hold an emit's ticks (drawn as ticks, not bars).
    emit_lanes: Vec<bool>,
    calls: Vec<Call>,
    ticks: Vec<(usize, Instant)>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Record {
    fn lane(&mut self, name: &str, emit: bool) -> usize {
        if let Some(&i) = self.lane_index.get(name) {
            return i;
        }
        let i = self.lanes.len();
        self.lanes.push(name.to_owned());
        self.emit_lanes.push(emit);
        self.lane_index.insert(name.to_owned(), i);
        i
    }

    fn saw(&mut self, at: Instant) {
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }
}

/// Identifies a call recorded with [`Timeline::call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId(usize);

/// A recorder of emits' ticks and executes' calls, and their SVG picture;
/// clones share the record.
///
/// # Examples
///
/// A bot on virtual time, recorded and drawn:
///
/// ```
/// use machina_core::bot::{Event, Machina};
/// use machina_core::limit::Limits;
/// use machina_core::testing::MockRuntime;
/// use machina_core::timeline::Timeline;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let timeline = Timeline::new();
/// let mut bot = Machina::builder(&rt);
/// bot.timeline(&timeline);
/// bot.group("api", Limits::new().max_in_flight(2))?;
/// let work = rt.clone();
/// let fetch = bot
///     .execute("fetch", move |n: u64| {
///         let rt = work.clone();
///         async move { rt.sleep(Duration::from_millis(300)).await; Ok::<_, std::io::Error>(n) }
///     })
///     .groups(["api"])
///     .register()?;
/// bot.emit("poll", "1s")?.count(3).register(move |_: Event| {
///     let fetch = fetch.clone();
///     async move {
///         for n in 0..3 {
///             fetch.spawn(n)?.detach();
///         }
///         Ok::<(), machina_core::BoxError>(())
///     }
/// })?;
/// mock.block_on(bot.build().run())??;
/// assert_eq!(timeline.calls(), 9);
/// assert_eq!(timeline.lanes(), ["emit poll", "api"]);
/// let svg = timeline.render_svg();
/// assert_eq!(svg.matches(r#"class="call"#).count(), 9);
/// # Ok::<(), machina_core::BoxError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    record: Arc<Mutex<Record>>,
}

impl Timeline {
    /// An empty recorder.
    pub fn new() -> Self {
        Timeline::default()
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a tick of emit `emit` at `at`.
    pub fn tick(&self, emit: &str, at: Instant) {
        let mut record = self.record();
        let lane = record.lane(&format!("emit {emit}"), true);
        record.ticks.push((lane, at));
        record.saw(at);
    }

    /// Records a call made at `made`, drawn in lane `lane` (a group's
    /// name, or the execute's).
    pub fn call(&self, lane: &str, made: Instant) -> CallId {
        let mut record = self.record();
        let lane = record.lane(lane, false);
        record.calls.push(Call {
            lane,
            made,
            attempts: Vec::new(),
            end: None,
        });
        record.saw(made);
        CallId(record.calls.len() - 1)
    }

    /// Records an attempt of call `id` starting at `at` (the first is the
    /// call's start; later ones are retries).
    pub fn attempt(&self, id: CallId, at: Instant) {
        let mut record = self.record();
        if let Some(call) = record.calls.get_mut(id.0) {
            call.attempts.push(at);
        }
        record.saw(at);
    }

    /// Records the end of call `id` at `at`; only the first end counts.
    pub fn end(&self, id: CallId, at: Instant, how: CallEnd) {
        let mut record = self.record();
        if let Some(call) = record.calls.get_mut(id.0)
            && call.end.is_none()
        {
            call.end = Some((at, how));
        }
        record.saw(at);
    }

    /// How many calls were recorded.
    pub fn calls(&self) -> usize {
        self.record().calls.len()
    }

    /// How many calls ended each way (calls not ended yet are not counted).
    pub fn endings(&self) -> HashMap<CallEnd, usize> {
        let mut out = HashMap::new();
        for call in &self.record().calls {
            if let Some((_, how)) = call.end {
                *out.entry(how).or_insert(0) += 1;
            }
        }
        out
    }

    /// The lanes, in the order they first appeared.
    pub fn lanes(&self) -> Vec<String> {
        self.record().lanes.clone()
    }

    /// The picture: one lane per group or emit; a bar per call from its
    /// first attempt to its end (green ok, red failed, orange refused, grey
    /// cancelled; a thin line before it while it waited for its group),
    /// calls in flight at once on rows of their own, a dot per retry, a
    /// tick per emit run; an axis in seconds from the first event.
    pub fn render_svg(&self) -> String {
        let record = self.record();
        const LEFT: f64 = 170.0;
        const WIDTH: f64 = 1200.0;
        /// Height of one row of bars; a lane has a row per call in flight
        /// at once.
        const ROW: f64 = 12.0;
        const PAD: f64 = 6.0;
        const TOP: f64 = 40.0;
        let (Some(first), Some(last)) = (record.first, record.last) else {
            return String::from(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">nothing recorded</text></svg>"#,
            );
        };
        let span = (last - first).as_secs_f64().max(1e-9);
        let x =
            |at: Instant| LEFT + (at.saturating_duration_since(first).as_secs_f64() / span) * WIDTH;
        // Each call's row in its lane: the lowest row free at its start
        // (calls that overlap in time get rows of their own).
        let bounds = |call: &Call| {
            let start = call.attempts.first().copied().unwrap_or(call.made);
            let (end, how) = call.end.unwrap_or((last, CallEnd::Cancelled));
            (start, end, how)
        };
        let mut order: Vec<usize> = (0..record.calls.len()).collect();
        order.sort_by_key(|&i| bounds(&record.calls[i]).0);
        let mut rows_free: Vec<Vec<Instant>> = vec![Vec::new(); record.lanes.len()];
        let mut row_of = vec![0usize; record.calls.len()];
        for i in order {
            let call = &record.calls[i];
            let (start, end, _) = bounds(call);
            let rows = &mut rows_free[call.lane];
            let row = match rows.iter().position(|free| *free <= start) {
                Some(row) => row,
                None => {
                    rows.push(start);
                    rows.len() - 1
                }
            };
            rows[row] = end;
            row_of[i] = row;
        }
        let lane_height: Vec<f64> = rows_free
            .iter()
            .map(|rows| rows.len().max(1) as f64 * ROW + 2.0 * PAD)
            .collect();
        let mut lane_top = Vec::with_capacity(lane_height.len());
        let mut y = TOP;
        for h in &lane_height {
            lane_top.push(y);
            y += h;
        }
        let axis = y + 5.0;
        let height = axis + 30.0;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="sans-serif" font-size="12">"#,
            w = LEFT + WIDTH + 20.0
        );
        let _ = write!(
            svg,
            r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="20" font-size="14">{} calls, {} emit runs, {:.1} s</text>"##,
            record.calls.len(),
            record.ticks.len(),
            span
        );
        for (i, name) in record.lanes.iter().enumerate() {
            let _ = write!(
                svg,
                r##"<g class="lane"><rect x="{LEFT}" y="{y}" width="{WIDTH}" height="{h}" fill="{fill}"/><text x="10" y="{ty}">{name}</text></g>"##,
                y = lane_top[i],
                h = lane_height[i],
                fill = if i % 2 == 0 { "#f4f4f4" } else { "#ffffff" },
                ty = lane_top[i] + PAD + 10.0,
                name = escape(name),
            );
        }
        for (lane, at) in &record.ticks {
            let _ = write!(
                svg,
                r##"<line class="tick" x1="{x}" x2="{x}" y1="{y1}" y2="{y2}" stroke="#3060c0"/>"##,
                x = x(*at),
                y1 = lane_top[*lane] + PAD,
                y2 = lane_top[*lane] + lane_height[*lane] - PAD,
            );
        }
        // Waits first, so that bars are drawn over them.
        for (i, call) in record.calls.iter().enumerate() {
            let (start, _, _) = bounds(call);
            if start > call.made {
                let _ = write!(
                    svg,
                    r##"<line class="wait" x1="{x1}" x2="{x2}" y1="{ym}" y2="{ym}" stroke="#bbbbbb"/>"##,
                    x1 = x(call.made),
                    x2 = x(start),
                    ym = lane_top[call.lane] + PAD + ROW * row_of[i] as f64 + ROW / 2.0,
                );
            }
        }
        for (i, call) in record.calls.iter().enumerate() {
            let (start, end, how) = bounds(call);
            let row_y = lane_top[call.lane] + PAD + ROW * row_of[i] as f64;
            let colour = match how {
                CallEnd::Ok => "#3a9d3a",
                CallEnd::Failed => "#d03030",
                CallEnd::Refused => "#e08a00",
                CallEnd::Cancelled => "#888888",
            };
            let _ = write!(
                svg,
                r##"<rect class="call" x="{x1}" y="{y1}" width="{w}" height="{h}" fill="{colour}"/>"##,
                x1 = x(start),
                y1 = row_y + 1.0,
                w = (x(end) - x(start)).max(1.0),
                h = ROW - 2.0,
            );
            for retry in call.attempts.iter().skip(1) {
                let _ = write!(
                    svg,
                    r##"<circle class="retry" cx="{cx}" cy="{cy}" r="2.5" fill="#000000"/>"##,
                    cx = x(*retry),
                    cy = row_y + ROW / 2.0,
                );
            }
        }
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{axis}" y2="{axis}" stroke="#000000"/>"##,
            x2 = LEFT + WIDTH
        );
        for k in 0..=10 {
            let xk = LEFT + WIDTH * f64::from(k) / 10.0;
            let _ = write!(
                svg,
                r##"<g class="axis"><line x1="{xk}" x2="{xk}" y1="{axis}" y2="{a2}" stroke="#000000"/><text x="{xk}" y="{ty}" text-anchor="middle">{label:.1} s</text></g>"##,
                a2 = axis + 5.0,
                ty = axis + 18.0,
                label = span * f64::from(k) / 10.0,
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

/// `text` safe inside an SVG element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! Per-image mirroring status, as the agent reports it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What an image replayer is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    /// Bootstrapping (registering, creating the replica, checking roles).
    Starting,
    /// Full image sync in progress.
    Syncing,
    /// Replaying the primary's journal (live).
    Replaying,
    /// Not replicating; the description says why (local image is primary, remote not primary, …).
    Stopped,
    /// Replay failed; the replayer retries after a back-off.
    Error,
    /// Both sites wrote after a divergence; replay stopped until a resync is requested.
    SplitBrain,
}

impl std::fmt::Display for ImageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ImageState::Starting => "starting",
            ImageState::Syncing => "syncing",
            ImageState::Replaying => "replaying",
            ImageState::Stopped => "stopped",
            ImageState::Error => "error",
            ImageState::SplitBrain => "split-brain",
        };
        f.write_str(s)
    }
}

/// A snapshot of one image's mirroring status.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageStatus {
    /// Image name (the same on both sites).
    pub name: String,
    /// Global image id.
    pub global_id: String,
    /// State.
    pub state: ImageState,
    /// Human-readable detail (last error, why stopped, sync progress).
    pub description: String,
    /// Entries in the primary's journal not yet applied here (entry-tid distance within the
    /// current tag; 0 when caught up).
    pub entries_behind: u64,
    /// Age of the oldest event not yet applied, from the events' timestamps (0 when caught up).
    pub seconds_behind: f64,
    /// Payload bytes applied per second (recent window).
    pub bytes_per_second: f64,
    /// Entries applied per second (recent window).
    pub entries_per_second: f64,
    /// Entries applied since the replayer started.
    pub entries_applied: u64,
    /// Sync progress: objects copied / total, when syncing.
    pub sync_progress: Option<(u64, u64)>,
}

impl ImageStatus {
    /// A fresh status in [`ImageState::Starting`].
    pub fn starting(name: &str, global_id: &str) -> Self {
        ImageStatus {
            name: name.to_owned(),
            global_id: global_id.to_owned(),
            state: ImageState::Starting,
            description: String::new(),
            entries_behind: 0,
            seconds_behind: 0.0,
            bytes_per_second: 0.0,
            entries_per_second: 0.0,
            entries_applied: 0,
            sync_progress: None,
        }
    }
}

/// Entries/s and bytes/s over a sliding window of one-second-ish buckets.
#[derive(Debug)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Instant, u64, u64)>,
    /// Sums of the samples' entries and bytes (kept with them, so rates are O(1)).
    totals: (u64, u64),
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter::new(Duration::from_secs(10))
    }
}

impl RateMeter {
    /// A meter averaging over `window`.
    pub fn new(window: Duration) -> Self {
        RateMeter {
            window,
            samples: VecDeque::new(),
            totals: (0, 0),
        }
    }

    /// Records `entries` entries carrying `bytes` payload bytes, applied now.
    pub fn record(&mut self, entries: u64, bytes: u64) {
        let now = Instant::now();
        self.totals.0 += entries;
        self.totals.1 += bytes;
        match self.samples.back_mut() {
            Some((t, e, b)) if now.duration_since(*t) < Duration::from_millis(100) => {
                *e += entries;
                *b += bytes;
            }
            _ => self.samples.push_back((now, entries, bytes)),
        }
        self.expire(now);
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, e, b)) = self.samples.front() {
            if now.duration_since(t) > self.window {
                self.samples.pop_front();
                self.totals.0 -= e;
                self.totals.1 -= b;
            } else {
                break;
            }
        }
    }

    /// (entries per second, bytes per second) over the window.
    pub fn rates(&mut self) -> (f64, f64) {
        let now = Instant::now();
        self.expire(now);
        let Some((first, _, _)) = self.samples.front() else {
            return (0.0, 0.0);
        };
        let span = now.duration_since(*first).as_secs_f64().max(1.0);
        let (e, b) = self.totals;
        (e as f64 / span, b as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_sums_recent_samples() {
        let mut m = RateMeter::new(Duration::from_secs(60));
        m.record(10, 1000);
        m.record(5, 500);
        let (e, b) = m.rates();
        // Span is clamped to at least one second, so rates are at most the totals.
        assert!(e > 0.0 && e <= 15.0);
        assert!(b > 0.0 && b <= 1500.0);
        assert_eq!(ImageState::SplitBrain.to_string(), "split-brain");
    }

    /// Expired samples leave the running totals: after the window only newer records count.
    #[test]
    fn meter_totals_drop_expired_samples() {
        let mut m = RateMeter::new(Duration::from_millis(1));
        m.record(10, 1000);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(m.rates(), (0.0, 0.0));
        m.record(3, 30);
        let (e, b) = m.rates();
        assert!(e > 0.0 && e <= 3.0, "{e}");
        assert!(b > 0.0 && b <= 30.0, "{b}");
    }
}

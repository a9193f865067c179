//! A log of a runtime's events as they arrive, for splitting a client call into the
//! runtime's own steps: filled by a background reader (containerd's API stream, `docker
//! events`), read after each call with a deadline.

use anyhow::{Context, Result, bail};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an event the client already waited for may take to reach us.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(5);

/// One event: its topic (containerd's, or Docker's `<type>/<action>`), the runtime's
/// timestamp, and what it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub topic: String,
    pub unix_ns: u64,
    /// The container id, image name or snapshot key the event names.
    pub subject: String,
    /// For containerd's `/tasks/exit`: when the process exited, as the shim saw it.
    pub exited_at_ns: Option<u64>,
}

#[derive(Default)]
struct Entries {
    events: Vec<Event>,
    /// Set when the stream ended; no event will arrive after it.
    closed: Option<String>,
}

/// When the first event of `topic` about `subject` at or after `since` happened: an event
/// from before the call (a late one of an earlier call on the same subject) never counts.
pub fn first_at(events: &[Event], topic: &str, subject: &str, since: u64) -> Result<u64> {
    events
        .iter()
        .find(|e| e.topic == topic && e.subject == subject && e.unix_ns >= since)
        .map(|e| e.unix_ns)
        .with_context(|| format!("the runtime's event stream has no {topic} for {subject}"))
}

/// The shared log: readers push, the bench waits.
#[derive(Clone, Default)]
pub struct Log {
    shared: Arc<(Mutex<Entries>, Condvar)>,
}

impl Log {
    pub fn push(&self, event: Event) {
        let (entries, arrived) = &*self.shared;
        entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .push(event);
        arrived.notify_all();
    }

    /// The source ended: waits fail at once from now on, with `why`.
    pub fn close(&self, why: String) {
        let (entries, arrived) = &*self.shared;
        entries.lock().unwrap_or_else(|e| e.into_inner()).closed = Some(why);
        arrived.notify_all();
    }

    /// Forgets every event so far: call before the operation whose events are wanted.
    pub fn clear(&self) {
        let (entries, _) = &*self.shared;
        entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .clear();
    }

    /// Waits until an event matching `until` has arrived (or `deadline` passes, or the stream
    /// ends), then returns every event so far.
    pub fn wait_for(
        &self,
        deadline: Instant,
        until: impl Fn(&Event) -> bool,
    ) -> Result<Vec<Event>> {
        let (entries, arrived) = &*self.shared;
        let mut log = entries.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if log.events.iter().any(&until) {
                return Ok(log.events.clone());
            }
            if let Some(why) = &log.closed {
                bail!("the runtime's event stream ended: {why}");
            }
            let now = Instant::now();
            if now >= deadline {
                bail!("timed out");
            }
            log = arrived
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits (up to the event deadline) for the event of `topic` about `subject`; returns
    /// every event so far.
    pub fn wait_for_topic(&self, topic: &str, subject: &str) -> Result<Vec<Event>> {
        self.wait_for(Instant::now() + EVENT_DEADLINE, |e| {
            e.topic == topic && e.subject == subject
        })
        .with_context(|| {
            let (entries, _) = &*self.shared;
            let seen: Vec<String> = entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .events
                .iter()
                .map(|e| format!("{} {}", e.topic, e.subject))
                .collect();
            format!(
                "the runtime's event stream reported no {topic} for {subject} within {EVENT_DEADLINE:?} (it reported: {})",
                seen.join(", ")
            )
        })
    }
}

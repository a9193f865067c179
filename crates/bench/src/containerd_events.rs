//! containerd's own event stream, through its API (`containerd-client`): the timestamps at
//! which containerd recorded an image, committed a snapshot, created a container, created,
//! started, exited and deleted a task. They split a `ctr` pull or run into containerd's steps.

use crate::events::{EVENT_DEADLINE, Event, Log};
use anyhow::{Context, Result, bail};
use containerd_client::events::{
    ContainerCreate, ContainerUpdate, SnapshotCommit, TaskCreate, TaskDelete, TaskExit, TaskStart,
};
use containerd_client::services::v1::events_client::EventsClient;
// containerd declares its image events in the images service's package.
use containerd_client::services::v1::{ImageCreate, ImageUpdate, PublishRequest, SubscribeRequest};
use containerd_client::tonic::Request;
use containerd_client::tonic::transport::Channel;
use prost::Message;
use std::cell::Cell;
use std::ops::Deref;
use std::path::Path;
use std::time::{Duration, Instant};

/// The topic of the markers we publish: one that comes back through the subscription proves
/// it live, and every event published before it has arrived (containerd delivers in order).
const MARKER_TOPIC: &str = "/wnb/marker";

/// A live subscription to one namespace of one containerd; ends when dropped.
pub struct EventLog {
    log: Log,
    namespace: String,
    publisher: EventsClient<Channel>,
    /// Blocks on publishing; the subscription has its own runtime on its own thread.
    runtime: tokio::runtime::Runtime,
    markers: Cell<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn timestamp_ns(t: &Option<prost_types::Timestamp>) -> Option<u64> {
    let t = t.as_ref()?;
    Some(u64::try_from(t.seconds).ok()? * 1_000_000_000 + u64::try_from(t.nanos).ok()?)
}

/// The subject of the event types we use (others are kept with an empty one), and for
/// `/tasks/exit` when the process exited.
fn decode(topic: &str, payload: &[u8]) -> (String, Option<u64>) {
    let subject = match topic {
        "/containers/create" => ContainerCreate::decode(payload).map(|e| e.id),
        MARKER_TOPIC => ContainerUpdate::decode(payload).map(|e| e.id),
        "/tasks/create" => TaskCreate::decode(payload).map(|e| e.container_id),
        "/tasks/start" => TaskStart::decode(payload).map(|e| e.container_id),
        "/tasks/delete" => TaskDelete::decode(payload).map(|e| e.container_id),
        "/tasks/exit" => {
            return TaskExit::decode(payload)
                .map(|e| (e.container_id, timestamp_ns(&e.exited_at)))
                .unwrap_or_default();
        }
        "/images/create" => ImageCreate::decode(payload).map(|e| e.name),
        "/images/update" => ImageUpdate::decode(payload).map(|e| e.name),
        "/snapshot/commit" => SnapshotCommit::decode(payload).map(|e| e.key),
        _ => Ok(String::new()),
    };
    (subject.unwrap_or_default(), None)
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A channel to containerd's API at `socket`, driven by `runtime`.
fn connect(runtime: &tokio::runtime::Runtime, socket: &Path) -> Result<Channel> {
    runtime
        .block_on(async {
            tokio::time::timeout(
                EVENT_DEADLINE,
                containerd_client::connect(socket.to_owned()),
            )
            .await
        })
        .map_err(|_| anyhow::anyhow!("timed out after {EVENT_DEADLINE:?}"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| {
            format!(
                "cannot connect to containerd's API at {} for its events",
                socket.display()
            )
        })
}

impl EventLog {
    /// Subscribes to `namespace` on the containerd at `socket`, and returns once the
    /// subscription is live.
    pub fn subscribe(socket: &Path, namespace: &str) -> Result<EventLog> {
        let log = Log::default();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        // A tonic channel's connection is driven by the runtime it was made on: the
        // subscription's thread and the publisher each get their own.
        let runtime = current_thread_runtime()?;
        let channel = connect(&runtime, socket)?;
        let subscription_runtime = current_thread_runtime()?;
        let subscription_channel = connect(&subscription_runtime, socket)?;
        let filter = format!("namespace=={namespace}");
        let thread = {
            let log = log.clone();
            std::thread::Builder::new()
                .name("containerd-events".into())
                .spawn(move || {
                    let why = subscription_runtime.block_on(stream_events(
                        subscription_channel,
                        filter,
                        &log,
                        stop_rx,
                    ));
                    log.close(why);
                })?
        };
        let events = EventLog {
            log,
            namespace: namespace.to_owned(),
            publisher: EventsClient::new(channel),
            runtime,
            markers: Cell::new(0),
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        // containerd sends the stream's headers with its first event; until a marker comes
        // back, the subscription may not be registered yet, so markers are repeated.
        let deadline = Instant::now() + EVENT_DEADLINE;
        while Instant::now() < deadline {
            if events.round_trip(Duration::from_millis(200)).is_ok() {
                return Ok(events);
            }
        }
        bail!("containerd's event subscription did not deliver within {EVENT_DEADLINE:?}")
    }

    /// Publishes a marker and waits (up to `wait`) for it to come back.
    fn round_trip(&self, wait: Duration) -> Result<()> {
        let n = self.markers.get() + 1;
        self.markers.set(n);
        let marker = format!("wnb-{}-{n}", std::process::id());
        let mut request = Request::new(PublishRequest {
            topic: MARKER_TOPIC.into(),
            event: Some(containerd_client::to_any(&ContainerUpdate {
                id: marker.clone(),
                ..Default::default()
            })),
        });
        request
            .metadata_mut()
            .insert("containerd-namespace", self.namespace.parse()?);
        let mut publisher = self.publisher.clone();
        self.runtime
            .block_on(async {
                tokio::time::timeout(EVENT_DEADLINE, publisher.publish(request)).await
            })
            .map_err(|_| anyhow::anyhow!("containerd did not answer within {EVENT_DEADLINE:?}"))?
            .context("cannot publish to containerd's event stream")?;
        self.log
            .wait_for(Instant::now() + wait, |e| {
                e.topic == MARKER_TOPIC && e.subject == marker
            })
            .map(drop)
    }

    /// Returns every event so far once all that containerd published before this call has
    /// arrived (a marker published now has come back).
    pub fn sync(&self) -> Result<Vec<Event>> {
        self.round_trip(EVENT_DEADLINE)
            .context("containerd's event stream fell behind")?;
        self.log.wait_for(Instant::now(), |_| true)
    }
}

/// Reads the stream into the log until it ends or `stop` fires; returns why it ended.
async fn stream_events(
    channel: Channel,
    filter: String,
    log: &Log,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> String {
    let mut client = EventsClient::new(channel);
    let request = SubscribeRequest {
        filters: vec![filter],
    };
    let mut stream = tokio::select! {
        _ = &mut stop => return "stopped".into(),
        r = client.subscribe(request) => match r {
            Ok(s) => s.into_inner(),
            Err(e) => return format!("cannot subscribe: {e}"),
        },
    };
    loop {
        let message = tokio::select! {
            _ = &mut stop => return "stopped".into(),
            m = stream.message() => m,
        };
        match message {
            Ok(Some(envelope)) => {
                let Some(unix_ns) = timestamp_ns(&envelope.timestamp) else {
                    // No time, no use: a phase is never made up from a missing timestamp.
                    continue;
                };
                let (subject, exited_at_ns) = envelope
                    .event
                    .as_ref()
                    .map(|any| decode(&envelope.topic, &any.value))
                    .unwrap_or_default();
                log.push(Event {
                    unix_ns,
                    topic: envelope.topic,
                    subject,
                    exited_at_ns,
                });
            }
            Ok(None) => return "containerd closed it".into(),
            Err(e) => return format!("{e}"),
        }
    }
}

impl Deref for EventLog {
    type Target = Log;
    fn deref(&self) -> &Log {
        &self.log
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

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
use prost::Message;
use std::ops::Deref;
use std::path::Path;
use std::time::{Duration, Instant};
/// The topic of the marker we publish to learn that the subscription is live.
const MARKER_TOPIC: &str = "/wnb/subscribed";

/// A live subscription to one namespace of one containerd; ends when dropped.
pub struct EventLog {
    log: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn timestamp_ns(t: &Option<prost_types::Timestamp>) -> u64 {
    t.as_ref()
        .map(|t| (t.seconds.max(0) as u64) * 1_000_000_000 + t.nanos.max(0) as u64)
        .unwrap_or(0)
}

/// The subject of the event types we use; others are kept with an empty subject.
fn decode(topic: &str, payload: &[u8]) -> (String, Option<u64>) {
    let subject = match topic {
        "/containers/create" => ContainerCreate::decode(payload).map(|e| e.id),
        "/containers/update" | MARKER_TOPIC => ContainerUpdate::decode(payload).map(|e| e.id),
        "/tasks/create" => TaskCreate::decode(payload).map(|e| e.container_id),
        "/tasks/start" => TaskStart::decode(payload).map(|e| e.container_id),
        "/tasks/delete" => TaskDelete::decode(payload).map(|e| e.container_id),
        "/tasks/exit" => {
            return TaskExit::decode(payload)
                .map(|e| (e.container_id, Some(timestamp_ns(&e.exited_at))))
                .unwrap_or_default();
        }
        "/images/create" => ImageCreate::decode(payload).map(|e| e.name),
        "/images/update" => ImageUpdate::decode(payload).map(|e| e.name),
        "/snapshot/commit" => SnapshotCommit::decode(payload).map(|e| e.key),
        _ => Ok(String::new()),
    };
    (subject.unwrap_or_default(), None)
}

impl EventLog {
    /// Subscribes to `namespace` on the containerd at `socket`, and returns once the
    /// subscription is live (a marker event we publish has come back through it).
    pub fn subscribe(socket: &Path, namespace: &str) -> Result<EventLog> {
        let log = Log::default();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let channel = runtime
            .block_on(async {
                tokio::time::timeout(
                    EVENT_DEADLINE,
                    containerd_client::connect(socket.to_owned()),
                )
                .await
            })
            .map_err(|_| anyhow::anyhow!("timed out"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| {
                format!(
                    "cannot connect to containerd's API at {} for its events",
                    socket.display()
                )
            })?;
        let filter = format!("namespace=={namespace}");
        let thread = {
            let log = log.clone();
            let channel = channel.clone();
            std::thread::Builder::new()
                .name("containerd-events".into())
                .spawn(move || {
                    let why = runtime.block_on(stream_events(channel, filter, &log, stop_rx));
                    log.close(why);
                })?
        };
        let events = EventLog {
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        events.await_marker(channel, namespace)?;
        Ok(events)
    }

    /// Publishes markers until one comes back through the subscription.
    fn await_marker(
        &self,
        channel: containerd_client::tonic::transport::Channel,
        namespace: &str,
    ) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut client = EventsClient::new(channel);
        let marker = format!("wnb-subscribed-{}", std::process::id());
        let deadline = Instant::now() + EVENT_DEADLINE;
        while Instant::now() < deadline {
            let request = PublishRequest {
                topic: MARKER_TOPIC.into(),
                event: Some(containerd_client::to_any(&ContainerUpdate {
                    id: marker.clone(),
                    ..Default::default()
                })),
            };
            let mut request = Request::new(request);
            request
                .metadata_mut()
                .insert("containerd-namespace", namespace.parse()?);
            runtime
                .block_on(async {
                    tokio::time::timeout(EVENT_DEADLINE, client.publish(request)).await
                })
                .map_err(|_| {
                    anyhow::anyhow!("containerd did not answer within {EVENT_DEADLINE:?}")
                })?
                .context("cannot publish to containerd's event stream")?;
            if self
                .wait_for(Instant::now() + Duration::from_millis(200), |e| {
                    e.topic == MARKER_TOPIC && e.subject == marker
                })
                .is_ok()
            {
                return Ok(());
            }
        }
        bail!("containerd's event subscription did not deliver within {EVENT_DEADLINE:?}")
    }
}

/// Reads the stream into the log until it ends or `stop` fires; returns why it ended.
async fn stream_events(
    channel: containerd_client::tonic::transport::Channel,
    filter: String,
    log: &Log,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> String {
    let mut client = EventsClient::new(channel);
    let request = SubscribeRequest {
        filters: vec![filter],
    };
    // containerd sends the stream's headers with its first event: the marker we publish.
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
                let (subject, exited_at_ns) = envelope
                    .event
                    .as_ref()
                    .map(|any| decode(&envelope.topic, &any.value))
                    .unwrap_or_default();
                let event = Event {
                    unix_ns: timestamp_ns(&envelope.timestamp),
                    topic: envelope.topic,
                    subject,
                    exited_at_ns,
                };
                log.push(event);
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

//! A TCP proxy that delays each direction: the round-trip time of a link, since this kernel
//! has no `netem`.
//!
//! Why our own and not `noxious` (the Rust Toxiproxy port): its latency toxic sleeps for the
//! latency before each chunk in turn (`stream.then(sleep)`), so a stream of chunks is delayed
//! once per chunk and throughput collapses to chunk size / latency; its delays are whole
//! milliseconds on tokio's millisecond timer (the `lan` profile's round trip is 0.5 ms); and
//! its toxics are internal to the crate, reachable only through its HTTP API. Here each chunk
//! is stamped when read and written `delay` after that, so the delay is pipelined (bandwidth
//! is left to the qdiscs) and as fine as the kernel's `nanosleep`.
//!
//! What a userspace proxy cannot do: delay the TCP handshake itself. The client's connect to
//! the proxy completes at once, so the handshake's round trip is charged to the connection's
//! first bytes instead: nothing the client sends is forwarded before one round trip after the
//! accept. A request on a new connection is answered after two round trips, as on a real link.
//! Also, the client's and the registry's TCP never see the round trip (each talks to the proxy
//! locally), so slow start and window limits of a real long path are not reproduced.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CHUNK: usize = 64 * 1024;
/// Chunks read but not yet written, per direction of a connection (4 MiB).
const QUEUE: usize = 64;
/// Longest wait for the upstream's connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Delays shared by every connection; changed in place when the link is calibrated.
#[derive(Debug, Default)]
struct Delays {
    down_ns: AtomicU64,
    up_ns: AtomicU64,
    handshake_ns: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    delays: Delays,
    connections: Mutex<Vec<Connection>>,
}

#[derive(Debug)]
struct Connection {
    sockets: [TcpStream; 2],
    threads: Vec<JoinHandle<()>>,
}

/// Listens on a loopback port of the host and forwards each connection to `upstream`.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl DelayProxy {
    pub fn start(upstream: SocketAddr) -> Result<DelayProxy> {
        DelayProxy::start_on(upstream, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Listens on `listen` (a port of 0: any free one).
    pub fn start_on(upstream: SocketAddr, listen: SocketAddr) -> Result<DelayProxy> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("cannot bind the delay proxy to {listen}"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            delays: Delays::default(),
            connections: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("link-proxy".into())
                .spawn(move || accept_loop(listener, upstream, shared))?
        };
        Ok(DelayProxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registry towards client (`down`), client towards registry (`up`), and how long after
    /// the accept a connection's first bytes may leave (the handshake's round trip).
    pub fn set_delays(&self, down: Duration, up: Duration, handshake: Duration) {
        let d = &self.shared.delays;
        d.down_ns.store(down.as_nanos() as u64, Ordering::Relaxed);
        d.up_ns.store(up.as_nanos() as u64, Ordering::Relaxed);
        d.handshake_ns
            .store(handshake.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let connections = std::mem::take(&mut *self.shared.connections.lock().unwrap());
        for c in connections {
            close(c);
        }
    }
}

fn close(c: Connection) {
    for s in &c.sockets {
        let _ = s.shutdown(Shutdown::Both);
    }
    for t in c.threads {
        let _ = t.join();
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let accepted = Instant::now();
        let Ok(client) = client else {
            // EMFILE and the like: do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(server) = TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT) else {
            continue; // the client sees its connection closed
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let handshake = Duration::from_nanos(shared.delays.handshake_ns.load(Ordering::Relaxed));
        let spawned = (|| -> std::io::Result<Connection> {
            let mut threads = Vec::new();
            threads.extend(pump(
                &client,
                &server,
                accepted + handshake,
                &shared,
                Dir::Up,
            )?);
            threads.extend(pump(&server, &client, accepted, &shared, Dir::Down)?);
            Ok(Connection {
                sockets: [client.try_clone()?, server.try_clone()?],
                threads,
            })
        })();
        let mut connections = shared.connections.lock().unwrap();
        // Forget connections that ended, so a long bench does not accumulate them.
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut *connections)
            .into_iter()
            .partition(|c| c.threads.iter().all(|t| t.is_finished()));
        *connections = open;
        if let Ok(c) = spawned {
            connections.push(c);
        }
        drop(connections);
        for c in done {
            close(c);
        }
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Up,
    Down,
}

/// A reader thread stamps chunks; a writer thread writes each `delay` after its stamp (and
/// never before `not_before`).
fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    not_before: Instant,
    shared: &Arc<Shared>,
    dir: Dir,
) -> std::io::Result<[JoinHandle<()>; 2]> {
    let (tx, rx) = sync_channel::<Option<(Instant, Vec<u8>)>>(QUEUE);
    let mut reader_src = src.try_clone()?;
    let reader = std::thread::Builder::new()
        .name("link-proxy-read".into())
        .spawn(move || {
            loop {
                let mut buf = vec![0; CHUNK];
                match reader_src.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(None);
                        return;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(Some((Instant::now(), buf))).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    let writer_src = src.try_clone()?;
    let writer_dst = dst.try_clone()?;
    let shared = shared.clone();
    let writer = std::thread::Builder::new()
        .name("link-proxy-write".into())
        .spawn(move || write_delayed(rx, writer_src, writer_dst, not_before, &shared, dir))?;
    Ok([reader, writer])
}

fn write_delayed(
    rx: Receiver<Option<(Instant, Vec<u8>)>>,
    src: TcpStream,
    mut dst: TcpStream,
    not_before: Instant,
    shared: &Shared,
    dir: Dir,
) {
    // The default 50 µs timer slack would add up to that to every delay; the `lan` profile's
    // whole one-way delay is 250 µs.
    // SAFETY: prctl(2) on this thread's own timer slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
    for message in rx {
        let Some((read_at, buf)) = message else {
            let _ = dst.shutdown(Shutdown::Write);
            return;
        };
        let delay = Duration::from_nanos(match dir {
            Dir::Up => shared.delays.up_ns.load(Ordering::Relaxed),
            Dir::Down => shared.delays.down_ns.load(Ordering::Relaxed),
        });
        let release = read_at.max(not_before) + delay;
        let now = Instant::now();
        if release > now {
            std::thread::sleep(release - now);
        }
        if shared.stop.load(Ordering::SeqCst) || dst.write_all(&buf).is_err() {
            let _ = src.shutdown(Shutdown::Both);
            let _ = dst.shutdown(Shutdown::Both);
            return;
        }
    }
}

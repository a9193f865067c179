//! Registries that stop answering, on loopback, for the timeout tests.
//!
//! [`StalledRegistry::silent`] accepts connections and never answers. [`StalledRegistry::in_front_of`]
//! stands in front of a real registry and forwards both ways until the registry has sent a
//! given number of bytes (over all connections), then forwards nothing more, either way, and
//! holds every connection open: a registry that hangs in the middle of a blob.
//!
//! Plain std threads, every loop bounded in count and time: at most [`MAX_CONNECTIONS`]
//! connections are accepted, every thread looks at the stop flag at least every [`TICK`], and
//! all of them end [`LIFETIME`] after the start even if the value is never dropped. Dropping it
//! closes every connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections accepted at most; later ones wait in the listen queue, unanswered as well.
pub const MAX_CONNECTIONS: usize = 64;
/// How often a thread with nothing to do looks at the stop flag.
pub const TICK: Duration = Duration::from_millis(50);
/// Every thread ends this long after the start, dropped or not.
pub const LIFETIME: Duration = Duration::from_secs(300);
/// A write to a peer that reads nothing gives up after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

struct Shared {
    stop: AtomicBool,
    deadline: Instant,
    /// Bytes forwarded from the registry to clients, over all connections.
    to_clients: AtomicU64,
    /// How many may be forwarded before the stall.
    threshold: u64,
    stalled: AtomicBool,
    connections: AtomicUsize,
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst) && Instant::now() < self.deadline
    }

    /// Takes up to `n` bytes of what may still go to clients; returns how many it got.
    fn grant(&self, n: usize) -> usize {
        let threshold = self.threshold;
        let before = self
            .to_clients
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |sent| {
                Some(sent.saturating_add(n as u64).min(threshold))
            })
            .expect("the update always returns Some");
        (before.saturating_add(n as u64).min(threshold) - before) as usize
    }
}

/// A loopback listener that never answers, or a proxy that stops forwarding; see the module.
pub struct StalledRegistry {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl StalledRegistry {
    /// Accepts connections and holds them open, never reading a request or writing a byte.
    pub fn silent() -> StalledRegistry {
        StalledRegistry::start(None, 0)
    }

    /// Forwards to `upstream` until it has sent `after_bytes` to clients (headers included),
    /// then stops forwarding and holds the connections open.
    pub fn in_front_of(upstream: SocketAddr, after_bytes: u64) -> StalledRegistry {
        StalledRegistry::start(Some(upstream), after_bytes)
    }

    fn start(upstream: Option<SocketAddr>, threshold: u64) -> StalledRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            deadline: Instant::now() + LIFETIME,
            to_clients: AtomicU64::new(0),
            threshold,
            stalled: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || accept(listener, upstream, &s));
        StalledRegistry {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `HOST:PORT`, as image references name it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Bytes forwarded from the registry to clients so far.
    pub fn forwarded_to_clients(&self) -> u64 {
        self.shared.to_clients.load(Ordering::SeqCst)
    }

    /// Whether forwarding has stopped (a client wanted more than the threshold).
    pub fn stalled(&self) -> bool {
        self.shared.stalled.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for StalledRegistry {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept(listener: TcpListener, upstream: Option<SocketAddr>, shared: &Arc<Shared>) {
    let mut held = Vec::new();
    let mut forwarders = Vec::new();
    while shared.running() && shared.connections.load(Ordering::SeqCst) < MAX_CONNECTIONS {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) => {
                // Nothing to accept (the listener does not block), or a failed accept.
                std::thread::sleep(TICK);
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nonblocking(false);
        match upstream {
            None => held.push(client),
            Some(upstream) => {
                let s = shared.clone();
                forwarders.push(std::thread::spawn(move || forward(client, upstream, &s)));
            }
        }
    }
    while shared.running() {
        std::thread::sleep(TICK);
    }
    drop(held);
    for f in forwarders {
        let _ = f.join();
    }
}

/// One client connection: a thread each way, until both end.
fn forward(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) {
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
        return;
    };
    let (Ok(client_reader), Ok(server_writer)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let s = shared.clone();
    let requests = std::thread::spawn(move || pump(client_reader, server_writer, false, &s));
    pump(server, client, true, shared);
    let _ = requests.join();
}

/// Copies `from` to `to` while running and not stalled; bytes towards a client are counted
/// against the threshold, and the copy that would pass it is cut there and stalls everything.
/// Once stalled, holds both sockets open until stopped.
fn pump(mut from: TcpStream, mut to: TcpStream, to_client: bool, shared: &Shared) {
    let _ = from.set_read_timeout(Some(TICK));
    let _ = to.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = vec![0u8; 16 * 1024];
    while shared.running() {
        if shared.stalled.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let granted = if to_client { shared.grant(n) } else { n };
        if to.write_all(&buf[..granted]).is_err() {
            return;
        }
        if granted < n {
            shared.stalled.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that sends `len` bytes to whoever connects, then closes.
    fn sender(len: usize) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(&vec![7u8; len]);
        });
        (addr, thread)
    }

    fn read_until_stall(s: &mut TcpStream) -> Vec<u8> {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[test]
    fn forwards_exactly_the_threshold_then_holds_the_connection_open() {
        let (upstream, server) = sender(100_000);
        let proxy = StalledRegistry::in_front_of(upstream, 30_000);
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        let got = read_until_stall(&mut client);
        assert_eq!(got.len(), 30_000);
        assert!(proxy.stalled());
        assert_eq!(proxy.forwarded_to_clients(), 30_000);
        // Still open: a read times out instead of seeing the end.
        let mut buf = [0u8; 1];
        let err = client.read(&mut buf).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        drop(proxy);
        server.join().unwrap();
        // Dropped: the connection is closed.
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(client.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn silent_accepts_and_never_answers() {
        let proxy = StalledRegistry::silent();
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        client.write_all(b"GET /v2/ HTTP/1.1\r\n\r\n").unwrap();
        assert!(read_until_stall(&mut client).is_empty());
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.connections() == 0 && Instant::now() < deadline {
            std::thread::sleep(TICK);
        }
        assert_eq!(proxy.connections(), 1);
    }
}

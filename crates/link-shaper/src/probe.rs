//! Shaping checked, not assumed: a probe server inside the namespace, reached through the same
//! veth, qdiscs and delays as the registry, and the client that measures round trip and
//! throughput through it.
//!
//! Protocol, one command after another on a connection: `P` → one byte back (a ping);
//! `D` + u64 n → n bytes back; `U` + u64 n + n bytes → one byte back once all arrived.

use crate::netns::Netns;
use anyhow::{Context, Result, anyhow, bail};
use records::link::LinkMeasurement;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// No read or write of the probe waits longer.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct ProbeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProbeServer {
    /// Listens on the namespace's address (a port of the kernel's choosing).
    pub fn start(netns: &Netns) -> Result<ProbeServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let ns_addr = netns.ns_addr;
        let entered = {
            // The thread enters the namespace before binding; the bench's threads stay out.
            let path_check = netns.enterer();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("link-probe".into())
                .spawn(move || {
                    let listener = path_check().and_then(|()| {
                        TcpListener::bind((ns_addr, 0)).context("cannot bind the link probe")
                    });
                    match listener {
                        Ok(l) => {
                            let _ = tx.send(l.local_addr().map_err(anyhow::Error::from));
                            serve(l, stop);
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                })?
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow!("the link probe did not start within 10 s"))??;
        Ok(ProbeServer {
            addr,
            stop,
            thread: Some(entered),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, stop: Arc<AtomicBool>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        handlers.retain(|h| !h.is_finished());
        let stop = stop.clone();
        if let Ok(h) = std::thread::Builder::new()
            .name("link-probe-conn".into())
            .spawn(move || {
                let _ = handle(conn, &stop);
            })
        {
            handlers.push(h);
        }
    }
    for h in handlers {
        let _ = h.join();
    }
}

fn handle(mut conn: TcpStream, stop: &AtomicBool) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    // Short reads so a stop is seen; the client's own timeouts bound the rest.
    conn.set_read_timeout(Some(Duration::from_millis(500)))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut command = [0u8; 1];
        match conn.read(&mut command) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        match command[0] {
            b'P' => conn.write_all(b"p")?,
            b'D' => {
                let mut n = read_u64(&mut conn, stop)?;
                while n > 0 {
                    let k = n.min(buf.len() as u64) as usize;
                    conn.write_all(&buf[..k])?;
                    n -= k as u64;
                }
            }
            b'U' => {
                let mut n = read_u64(&mut conn, stop)?;
                while n > 0 {
                    let k = n.min(buf.len() as u64) as usize;
                    match conn.read(&mut buf[..k]) {
                        Ok(0) => return Ok(()),
                        Ok(got) => n -= got as u64,
                        Err(e) if is_timeout(&e) && !stop.load(Ordering::SeqCst) => {}
                        Err(e) => return Err(e),
                    }
                }
                conn.write_all(b"u")?;
            }
            _ => return Ok(()),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn read_u64(conn: &mut TcpStream, stop: &AtomicBool) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match conn.read(&mut bytes[got..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => got += k,
            Err(e) if is_timeout(&e) && !stop.load(Ordering::SeqCst) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(u64::from_be_bytes(bytes))
}

/// How many bytes to move each way: about a second at the declared rate.
pub fn transfer_size(bits_per_second: Option<u64>) -> u64 {
    match bits_per_second {
        Some(b) => (b / 8).clamp(128 * 1024, 64 * 1024 * 1024),
        None => 16 * 1024 * 1024,
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to the link probe through {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn ping(s: &mut TcpStream) -> Result<Duration> {
    let t = Instant::now();
    s.write_all(b"P")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
        .context("the link probe did not answer a ping")?;
    Ok(t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median round trip on an open connection (`pings` of them, after one that absorbs the
/// connection's first-bytes delay).
pub fn round_trip(addr: SocketAddr, pings: usize) -> Result<Duration> {
    let mut s = connect(addr)?;
    ping(&mut s)?;
    let v = (0..pings)
        .map(|_| ping(&mut s))
        .collect::<Result<Vec<_>>>()?;
    Ok(median(v))
}

/// Median time from a connect to the answer of its first ping, over `n` new connections.
pub fn first_answer(addr: SocketAddr, n: usize) -> Result<Duration> {
    let mut first = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut s = connect(addr)?;
        ping(&mut s)?;
        first.push(t.elapsed());
    }
    Ok(median(first))
}

/// Measures through `addr` (the proxy in front of the probe).
pub fn measure(addr: SocketAddr, down_bytes: u64, up_bytes: u64) -> Result<LinkMeasurement> {
    let first = first_answer(addr, 5)?;
    let mut s = connect(addr)?;
    ping(&mut s)?;
    let rtt = median((0..15).map(|_| ping(&mut s)).collect::<Result<Vec<_>>>()?);

    // Down: from the first byte's arrival to the last's; the first read's bytes are not
    // counted (they arrived at that instant).
    s.write_all(b"D")?;
    s.write_all(&down_bytes.to_be_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    let mut first_read = None;
    let mut last = Instant::now();
    while received < down_bytes {
        let want = (down_bytes - received).min(buf.len() as u64) as usize;
        let n = s
            .read(&mut buf[..want])
            .context("reading the link probe's download")?;
        if n == 0 {
            bail!("the link probe closed after {received} of {down_bytes} bytes");
        }
        last = Instant::now();
        if first_read.is_none() {
            first_read = Some((last, n as u64));
        }
        received += n as u64;
    }
    let (t0, n0) = first_read.expect("down_bytes > 0");
    let down_bps = (down_bytes - n0) as f64 * 8.0 / (last - t0).as_secs_f64().max(1e-9);

    // Up: from the first byte sent until the answer that all arrived, less one round trip.
    s.write_all(b"U")?;
    s.write_all(&up_bytes.to_be_bytes())?;
    let t = Instant::now();
    let mut left = up_bytes;
    buf.fill(0x5a);
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        s.write_all(&buf[..k])
            .context("writing the link probe's upload")?;
        left -= k as u64;
    }
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
        .context("the link probe did not confirm the upload")?;
    let up_time = t.elapsed().saturating_sub(rtt);
    let up_bps = up_bytes as f64 * 8.0 / up_time.as_secs_f64().max(1e-9);
    let _ = s.shutdown(Shutdown::Both);

    Ok(LinkMeasurement {
        down_bits_per_second: down_bps,
        up_bits_per_second: up_bps,
        rtt_us: rtt.as_secs_f64() * 1e6,
        connect_and_first_answer_us: first.as_secs_f64() * 1e6,
        down_bytes,
        up_bytes,
    })
}

//! [`HostId`]: which machine measured a run, stable across benches and reboots, without
//! publishing the machine's own identifier.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// A machine's stable id in results files: the first 8 bytes (16 lowercase hex digits) of
/// SHA-256 over a label of this project and the machine's identifier — `/etc/machine-id`, else
/// `/var/lib/dbus/machine-id`, else the hostname. systemd asks that the machine id itself not
/// be published; a keyed hash of it cannot be turned back into it, and two tools hashing it
/// differently give ids that cannot be matched with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostId([u8; HostId::BYTES]);

/// The files that hold the machine's id, in the order they are tried.
const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
/// The kernel's hostname (what `hostname` prints); qemu-user passes it through.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

impl HostId {
    const BYTES: usize = 8;

    /// The id of the machine this code runs on (read once per process).
    pub fn current() -> HostId {
        static CURRENT: OnceLock<HostId> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let machine_id = MACHINE_ID_FILES.iter().find_map(|path| {
                let text = std::fs::read_to_string(path).ok()?;
                let id = text.trim();
                (!id.is_empty()).then(|| id.to_owned())
            });
            match machine_id {
                Some(id) => HostId::derive(IdSource::MachineId, &id),
                None => HostId::derive(IdSource::Hostname, &hostname()),
            }
        })
    }

    /// The id of a machine whose identifier (from `source`) is `value`.
    pub fn derive(source: IdSource, value: &str) -> HostId {
        let mut hash = Sha256::new();
        hash.update(b"wasm-native-bench host id\0");
        hash.update(match source {
            IdSource::MachineId => b"machine-id\0".as_slice(),
            IdSource::Hostname => b"hostname\0".as_slice(),
        });
        hash.update(value.as_bytes());
        let digest = hash.finalize();
        let mut id = [0; HostId::BYTES];
        id.copy_from_slice(&digest[..HostId::BYTES]);
        HostId(id)
    }
}

/// What a [`HostId`] was derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSource {
    /// `/etc/machine-id` or `/var/lib/dbus/machine-id`: set once when the system is installed.
    MachineId,
    /// The hostname, when the machine has no machine id: changes when the machine is renamed.
    Hostname,
}

/// The machine's hostname, empty if the kernel does not say.
pub fn hostname() -> String {
    std::fs::read_to_string(HOSTNAME_FILE)
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Not a host id: the text is not 16 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHostId(String);

impl fmt::Display for BadHostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a host id (16 lowercase hex digits, as the bench writes them)",
            self.0
        )
    }
}

impl std::error::Error for BadHostId {}

impl FromStr for HostId {
    type Err = BadHostId;

    fn from_str(s: &str) -> Result<HostId, BadHostId> {
        let bad = || BadHostId(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 2 * HostId::BYTES
            || !b
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        {
            return Err(bad());
        }
        let mut id = [0; HostId::BYTES];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(HostId(id))
    }
}

impl TryFrom<String> for HostId {
    type Error = BadHostId;

    fn try_from(s: String) -> Result<HostId, BadHostId> {
        s.parse()
    }
}

impl From<HostId> for String {
    fn from(id: HostId) -> String {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_short_and_hide_the_machine_id() {
        let machine_id = "0123456789abcdef0123456789abcdef";
        let id = HostId::derive(IdSource::MachineId, machine_id);
        // SHA-256("wasm-native-bench host id\0machine-id\0" + machine_id), first 8 bytes
        // (computed with Python's hashlib).
        assert_eq!(id.to_string(), "e5094d14c34b396a");
        assert_eq!(id, HostId::derive(IdSource::MachineId, machine_id));
        assert!(!id.to_string().contains(&machine_id[..8]));
        // The same text as a hostname is another machine's id.
        assert_ne!(id, HostId::derive(IdSource::Hostname, machine_id));
        assert_ne!(id, HostId::derive(IdSource::MachineId, "another"));
        // Read from this machine, twice the same.
        assert_eq!(HostId::current(), HostId::current());
    }

    #[test]
    fn ids_read_back_and_bad_ones_are_refused() {
        let id = HostId::derive(IdSource::Hostname, "board-a");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<HostId>(&json).unwrap(), id);
        for bad in [
            "",
            "53dd1ba77f1bc3c",
            "53dd1ba77f1bc3c2a",
            "53DD1BA77F1BC3C2",
            "53dd1ba77f1bc3cg",
            "+3dd1ba77f1bc3c2",
        ] {
            let err = serde_json::from_str::<HostId>(&format!("\"{bad}\"")).unwrap_err();
            assert!(err.to_string().contains("is not a host id"), "{bad}: {err}");
        }
    }
}

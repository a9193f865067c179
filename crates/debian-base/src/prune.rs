//! Pruning the layer cache. A layer's key includes the build epoch (every entry's mtime), and
//! the default epoch is the last commit's time, so each commit would add a full set of base
//! layers (0.86 GB for the unoptimized set). When a build completes, the layers of other
//! epochs go, except those another build has used since this one started (it may be
//! assembling them now).

use crate::{LAYER_BLOB, LAYER_RECORD, LayerRecord};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::SystemTime;

/// What [`prune_layers`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub layers: usize,
    pub bytes: u64,
}

/// Removes every cached layer under `<cache>/layers` whose epoch is not `keep_epoch` and that
/// was last built or used before `used_since` (a layer's record is rewritten each time a
/// build takes it from the cache). An entry without a readable record is removed too, on the
/// same terms; staging directories (names starting with `.`) belong to builds in progress and
/// are left alone.
pub fn prune_layers(cache: &Path, keep_epoch: u64, used_since: SystemTime) -> Result<Pruned> {
    let layers = cache.join("layers");
    let entries = match std::fs::read_dir(&layers) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pruned::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", layers.display())),
    };
    let mut pruned = Pruned::default();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", layers.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || !entry.file_type()?.is_dir() {
            continue;
        }
        let dir = entry.path();
        let record_path = dir.join(LAYER_RECORD);
        let epoch = std::fs::read(&record_path)
            .ok()
            .and_then(|t| serde_json::from_slice::<LayerRecord>(&t).ok())
            .and_then(|r| r.source_date_epoch);
        if epoch == Some(keep_epoch) {
            continue;
        }
        let touched = std::fs::metadata(&record_path)
            .or_else(|_| std::fs::metadata(&dir))
            .and_then(|m| m.modified())
            .with_context(|| format!("cannot read the time of {}", dir.display()))?;
        if touched >= used_since {
            continue;
        }
        let bytes = std::fs::metadata(dir.join(LAYER_BLOB)).map_or(0, |m| m.len());
        // Moved aside first: a build reading the cache sees the whole entry or none of it.
        let aside = layers.join(format!(
            ".prune.{}.{}",
            std::process::id(),
            name.to_string_lossy()
        ));
        std::fs::rename(&dir, &aside)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
        std::fs::remove_dir_all(&aside)
            .with_context(|| format!("cannot remove {}", aside.display()))?;
        pruned.layers += 1;
        pruned.bytes += bytes;
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn layer(layers: &Path, key: &str, epoch: Option<u64>, touched: SystemTime, blob: usize) {
        let dir = layers.join(key);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(LAYER_BLOB), vec![0u8; blob]).unwrap();
        let record = LayerRecord {
            digest: format!("sha256:{key}"),
            size: blob as u64,
            diff_id: format!("sha256:{key}"),
            packages: Vec::new(),
            installed_size_kib: 0,
            file_bytes: 0,
            source_date_epoch: epoch,
        };
        let path = dir.join(LAYER_RECORD);
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(touched)
            .unwrap();
    }

    #[test]
    fn layers_of_other_epochs_go_unless_used_since_the_build_started() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("layers");
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let before = since - Duration::from_secs(3600);
        let after = since + Duration::from_secs(1);
        layer(&layers, "kept-this-epoch", Some(7), before, 10);
        layer(&layers, "old-epoch", Some(6), before, 100);
        layer(&layers, "old-epoch-2", Some(5), before, 1000);
        layer(&layers, "no-epoch-recorded", None, before, 3);
        layer(&layers, "other-epoch-in-use", Some(6), after, 10_000);
        std::fs::create_dir_all(layers.join(".staging.1-2.partial")).unwrap();
        std::fs::create_dir_all(layers.join("no-record")).unwrap();
        std::fs::File::open(layers.join("no-record"))
            .unwrap()
            .set_modified(before)
            .unwrap();

        let pruned = prune_layers(tmp.path(), 7, since).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                layers: 4,
                bytes: 100 + 1000 + 3
            }
        );
        let mut left: Vec<String> = std::fs::read_dir(&layers)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".staging.1-2.partial",
                "kept-this-epoch",
                "other-epoch-in-use"
            ]
        );
        // Nothing left to prune, and a cache without layers is no error.
        assert_eq!(
            prune_layers(tmp.path(), 7, since).unwrap(),
            Pruned::default()
        );
        assert_eq!(
            prune_layers(&tmp.path().join("absent"), 7, since).unwrap(),
            Pruned::default()
        );
    }
}

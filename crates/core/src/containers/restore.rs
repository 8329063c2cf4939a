//! Restoring a snapshot in place, crash-safe. The container's subvolume
//! is swapped for a writable snapshot of the snapshot's layer, and its
//! lowers become the snapshot's. A journal file written first says what
//! the swap is, so a daemon killed at any step finishes or undoes it at
//! the next start:
//!
//! 1. `containers/<id>.restore.json`: the old and new lowers;
//! 2. the snapshot is made at `containers/<id>.new`;
//! 3. the current subvolume moves to `containers/<id>.old`;
//! 4. `<id>.new` moves to `<id>`;
//! 5. the database takes the new lowers; `<id>.old` and the journal go.
//!
//! Before step 4 a crash is undone (the old subvolume is put back); from
//! step 4 on it is finished. Nothing is ever only in `tmp/`, which the
//! pool clears at start.

use std::path::PathBuf;

use cubby_model::{ContainerId, LayerId};
use cubby_store::{ContainerRecord, LayerRecord};
use serde::{Deserialize, Serialize};

use super::ContainerService;
use crate::Error;

/// On disk as plain strings: the ids are the daemon's own (some older
/// layer ids have other shapes), read back with `from_stored`.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    old_lowers: Vec<String>,
    new_lowers: Vec<String>,
}

struct Paths {
    current: PathBuf,
    staged: PathBuf,
    aside: PathBuf,
    journal: PathBuf,
}

impl ContainerService {
    fn restore_paths(&self, id: &str) -> Paths {
        let dir = self.pool.containers_dir();
        Paths {
            current: dir.join(id),
            staged: dir.join(format!("{id}.new")),
            aside: dir.join(format!("{id}.old")),
            journal: dir.join(format!("{id}.restore.json")),
        }
    }

    fn lower_ids(&self, id: &ContainerId) -> Result<Vec<String>, Error> {
        Ok(self.store.container_lowers(id)?.into_iter().map(|l| l.id.into()).collect())
    }

    /// Swaps the (stopped) container's subvolume for a writable snapshot of
    /// `layer` and makes `new_lowers` its lowers. The caller holds the
    /// container's lock and the layer lock.
    pub(crate) fn swap_in_snapshot(
        &self,
        rec: &ContainerRecord,
        layer: &LayerRecord,
        new_lowers: &[LayerId],
    ) -> Result<(), Error> {
        self.swap_in(rec, &self.pool.root().join(&layer.subvolume), new_lowers)
    }

    /// [`Self::swap_in_snapshot`] from any subvolume `source` (snapshotted,
    /// not moved: the caller removes it).
    pub(crate) fn swap_in(
        &self,
        rec: &ContainerRecord,
        source: &std::path::Path,
        new_lowers: &[LayerId],
    ) -> Result<(), Error> {
        let id = rec.id.as_str();
        let p = self.restore_paths(id);
        let step = |s| Error::storage(s, id);
        let journal = Journal {
            old_lowers: self.lower_ids(&rec.id)?,
            new_lowers: new_lowers.iter().map(ToString::to_string).collect(),
        };
        let tmp = p.journal.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&journal).expect("plain data serialises"))
            .and_then(|()| std::fs::rename(&tmp, &p.journal))
            .map_err(Error::io("write the restore journal", &p.journal))?;
        let undo = |e: Error| {
            let _ = self.host.btrfs.delete_subvolume(&p.staged);
            let _ = std::fs::remove_file(&p.journal);
            e
        };
        self.host.btrfs.snapshot(source, &p.staged, false).map_err(|e| {
            let _ = std::fs::remove_file(&p.journal);
            step("restore snapshot")(e)
        })?;
        self.failpoint("restore.staged");
        std::fs::rename(&p.current, &p.aside).map_err(|e| undo(Error::io("move aside", &p.current)(e)))?;
        self.failpoint("restore.moved_aside");
        if let Err(e) = std::fs::rename(&p.staged, &p.current) {
            let _ = std::fs::rename(&p.aside, &p.current);
            return Err(undo(Error::io("move in", &p.staged)(e)));
        }
        self.failpoint("restore.swapped");
        self.finish_restore(rec, &journal, &p)
    }

    /// Step 5, idempotent: quota, lowers, then the old subvolume and the
    /// journal go.
    fn finish_restore(&self, rec: &ContainerRecord, journal: &Journal, p: &Paths) -> Result<(), Error> {
        let step = |s| Error::storage(s, rec.id.as_str());
        if let Some(limit) = rec.limits.disk {
            self.host.btrfs.set_disk_limit(&p.current, Some(limit.0)).map_err(step("set disk limit"))?;
        }
        let new_lowers: Vec<LayerId> = journal.new_lowers.iter().cloned().map(LayerId::from_stored).collect();
        self.store.set_container_lowers(&rec.id, &new_lowers)?;
        self.store.set_frozen_layer(&rec.id, None)?;
        if p.aside.exists() {
            self.host.btrfs.delete_subvolume(&p.aside).map_err(step("remove the replaced subvolume"))?;
        }
        std::fs::remove_file(&p.journal).map_err(Error::io("remove the restore journal", &p.journal))
    }

    /// At start: finishes or undoes every restore a crash interrupted.
    pub(crate) fn recover_restores(&self) -> Result<usize, Error> {
        let dir = self.pool.containers_dir();
        let mut recovered = 0;
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(0) };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".restore.json") else { continue };
            let p = self.restore_paths(id);
            let journal: Option<Journal> = std::fs::read(&p.journal).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let rec = self.store.container(&ContainerId::from_stored(id.to_string()))?;
            let (Some(journal), Some(rec)) = (journal, rec) else {
                // A torn journal (the crash came while writing it) or a
                // container deleted since: only debris is left.
                for sub in [&p.staged, &p.aside] {
                    if sub.exists() {
                        self.host.btrfs.delete_subvolume(sub).map_err(Error::storage("remove restore debris", id))?;
                    }
                }
                let _ = std::fs::remove_file(&p.journal);
                continue;
            };
            let (staged, current, aside) = (p.staged.exists(), p.current.exists(), p.aside.exists());
            if staged {
                // Steps 2-3: undo. The old subvolume goes back if it moved.
                if !current && aside {
                    std::fs::rename(&p.aside, &p.current).map_err(Error::io("move back", &p.aside))?;
                }
                self.host.btrfs.delete_subvolume(&p.staged).map_err(Error::storage("remove restore debris", id))?;
                std::fs::remove_file(&p.journal).map_err(Error::io("remove the restore journal", &p.journal))?;
                tracing::info!(container = %id, "an interrupted restore was undone");
            } else if aside || self.lower_ids(&rec.id)? == journal.new_lowers {
                // Step 4 happened: finish.
                self.finish_restore(&rec, &journal, &p)?;
                tracing::info!(container = %id, "an interrupted restore was finished");
            } else {
                // Step 1 only: nothing else happened.
                std::fs::remove_file(&p.journal).map_err(Error::io("remove the restore journal", &p.journal))?;
            }
            recovered += 1;
        }
        Ok(recovered)
    }
}

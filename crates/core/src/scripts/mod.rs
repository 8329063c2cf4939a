//! Exec scripts: the [`ScriptService`] owns a project's `scripts/` folder
//! on the host (one file per endpoint), its secrets (sealed at rest), the
//! log of its invocations and the run slots. Running a request through a
//! script is in [`run`]; which file answers a path is in [`routing`]. The
//! JavaScript engine itself is the `cubby-scripts` crate. The service
//! needs only the store and its folder: no host subsystem.

mod routing;
pub mod run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cubby_model::{
    MAX_SCRIPT_BYTES, ProjectId, PutSecrets, ScriptFile, ScriptInvocation, SecretNames, validate_script_path,
    validate_secrets,
};
use cubby_scripts::{ModuleCode, ModuleSource};
use cubby_storage::image::beneath::Beneath;
use sha2::{Digest, Sha256};

pub use routing::Route;

use crate::config::{Defaults, Urls};
use crate::sealed::SecretKey;
use crate::{Caller, Error};

/// Most files in one project's `scripts/`.
pub const MAX_SCRIPTS: u32 = 500;
/// Invocations kept in a project's log.
pub const LOG_KEEP: u32 = 1000;
/// How long a project's route table is trusted before the folder is read
/// again (files may be edited on the host directly).
const ROUTES_TTL: Duration = Duration::from_secs(1);

/// A script ready to run: its settings and its JavaScript.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub magic: cubby_scripts::Magic,
    /// The JavaScript, and its bytecode once a run made it.
    pub code: Arc<ModuleCode>,
}

/// A project's routes, and when the folder was read.
type RouteCache = HashMap<ProjectId, (Instant, Arc<Vec<Route>>)>;
/// Compiled files by path, with the version of the file they were
/// compiled from.
type CompiledCache = HashMap<PathBuf, (FileVersion, Arc<Compiled>)>;

/// What tells two versions of a file apart: a push writes a new file and
/// renames it over the old (a new inode), and an edit in place moves the
/// change time, even when the size stays and the mtime tick does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    modified: SystemTime,
    len: u64,
    inode: u64,
    changed_ns: i64,
}

impl FileVersion {
    fn of(meta: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            modified: meta.modified().ok()?,
            len: meta.len(),
            inode: meta.ino(),
            changed_ns: meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec()),
        })
    }
}

/// Caches and locks of the script runner.
#[derive(Debug, Default)]
struct ScriptState {
    /// Route tables per project, with when they were read.
    routes: Mutex<RouteCache>,
    /// Compiled files by path, valid while (mtime, size) hold.
    compiled: Mutex<CompiledCache>,
    /// Locks of `@concurrent false` scripts.
    serial: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// Run slots per project.
    slots: Mutex<HashMap<ProjectId, Arc<run::ProjectSlots>>>,
    /// SHA-256 of script files by path, valid while (mtime, size) hold.
    hashes: Mutex<HashMap<PathBuf, (SystemTime, u64, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Exec scripts, their secrets and their runs, for every project.
#[derive(Debug)]
pub struct ScriptService {
    store: Arc<dyn cubby_store::Store>,
    /// Projects' folders are `<data_dir>/projects/<id>`.
    data_dir: PathBuf,
    urls: Urls,
    defaults: Defaults,
    /// Seals project secrets at rest.
    secret_key: SecretKey,
    state: ScriptState,
    /// Bounds the scripts running at once on the daemon.
    slots: Arc<tokio::sync::Semaphore>,
    /// Failed runs are events.
    pub(crate) events: Arc<crate::events::Events>,
}

impl ScriptService {
    /// The service over `store`, keeping projects' folders in `data_dir`.
    pub fn new(
        store: Arc<dyn cubby_store::Store>,
        data_dir: PathBuf,
        urls: Urls,
        defaults: Defaults,
        secret_key: SecretKey,
        events: Arc<crate::events::Events>,
    ) -> Self {
        Self {
            store,
            data_dir,
            urls,
            defaults,
            secret_key,
            state: ScriptState::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(run::MAX_RUNNING)),
            events,
        }
    }

    /// The `scripts/` folder of a project.
    pub fn scripts_dir(&self, project: &ProjectId) -> PathBuf {
        self.data_dir.join("projects").join(project.as_str()).join("scripts")
    }

    fn script_view(&self, project_name: &str, file: &str, path: &Path) -> Result<ScriptFile, Error> {
        let meta = std::fs::metadata(path).map_err(Error::io("stat", path))?;
        let modified = meta.modified().map_err(Error::io("stat", path))?;
        // A file is read and hashed again only when it changed.
        let cached = lock(&self.state.hashes)
            .get(path)
            .filter(|(m, len, _)| *m == modified && *len == meta.len())
            .map(|(_, _, h)| h.clone());
        let sha256 = match cached {
            Some(hash) => hash,
            None => {
                let hash = sha256_hex(&std::fs::read(path).map_err(Error::io("read", path))?);
                lock(&self.state.hashes).insert(path.to_path_buf(), (modified, meta.len(), hash.clone()));
                hash
            }
        };
        Ok(ScriptFile {
            path: file.to_string(),
            size: meta.len(),
            sha256,
            url: format!("{}{}", self.exec_base_url(project_name), Route::of(file).pattern()),
            updated_at: cubby_model::Timestamp::from(modified),
        })
    }

    /// `http://{project}.exec.{domain}:{port}`.
    pub fn exec_base_url(&self, project_name: &str) -> String {
        self.urls.of_label(&format!("{project_name}.exec"))
    }

    fn forget_routes(&self, project: &ProjectId) {
        lock(&self.state.routes).remove(project);
    }

    /// Writes one script file (creating folders), replacing any.
    pub fn put_script(
        &self,
        caller: &Caller,
        project: &ProjectId,
        path: &str,
        content: &[u8],
    ) -> Result<ScriptFile, Error> {
        let p = crate::projects::visible(&*self.store, caller, project)?;
        validate_script_path(path)?;
        if content.len() > MAX_SCRIPT_BYTES {
            return Err(Error::TooLarge { limit: MAX_SCRIPT_BYTES as u64 });
        }
        let text =
            std::str::from_utf8(content).map_err(|_| Error::invalid("content", "a script must be UTF-8 text"))?;
        // Refuse what could never run, with the reason, at upload.
        compile(path, text)?;
        let dir = self.scripts_dir(project);
        let existing = list_files(&dir)?;
        if existing.len() >= MAX_SCRIPTS as usize && !existing.iter().any(|f| f == path) {
            return Err(Error::LimitReached { what: "scripts", limit: MAX_SCRIPTS });
        }
        let target = dir.join(path);
        let parent = target.parent().unwrap_or(&dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(Error::io("create", &parent))?;
        let tmp = parent.join(format!(".{}.tmp", cubby_model::random_id(8)));
        std::fs::write(&tmp, content).map_err(Error::io("write", &tmp))?;
        std::fs::rename(&tmp, &target).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io("rename", &target)(e)
        })?;
        self.forget_routes(project);
        tracing::info!(project = %project, script = path, bytes = content.len(), "script written");
        self.script_view(&p.name, path, &target)
    }

    /// One script: its description and content.
    pub fn script(&self, caller: &Caller, project: &ProjectId, path: &str) -> Result<(ScriptFile, Vec<u8>), Error> {
        let p = crate::projects::visible(&*self.store, caller, project)?;
        validate_script_path(path).map_err(|_| Error::NotFound { kind: "script", id: path.to_string() })?;
        let target = self.scripts_dir(project).join(path);
        if !target.is_file() {
            return Err(Error::NotFound { kind: "script", id: path.to_string() });
        }
        let content = std::fs::read(&target).map_err(Error::io("read", &target))?;
        Ok((self.script_view(&p.name, path, &target)?, content))
    }

    /// Removes one script (and folders it leaves empty).
    pub fn delete_script(&self, caller: &Caller, project: &ProjectId, path: &str) -> Result<(), Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        let not_found = || Error::NotFound { kind: "script", id: path.to_string() };
        validate_script_path(path).map_err(|_| not_found())?;
        let dir = self.scripts_dir(project);
        let target = dir.join(path);
        std::fs::remove_file(&target).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(),
            _ => Error::io("remove", &target)(e),
        })?;
        let mut parent = target.parent().map(Path::to_path_buf);
        while let Some(p) = parent.filter(|p| p != &dir && p.starts_with(&dir)) {
            if std::fs::remove_dir(&p).is_err() {
                break;
            }
            parent = p.parent().map(Path::to_path_buf);
        }
        lock(&self.state.compiled).remove(&target);
        self.forget_routes(project);
        tracing::info!(project = %project, script = path, "script removed");
        Ok(())
    }

    /// Every script of a project, by path.
    pub fn list(&self, caller: &Caller, project: &ProjectId) -> Result<Vec<ScriptFile>, Error> {
        let p = crate::projects::visible(&*self.store, caller, project)?;
        let dir = self.scripts_dir(project);
        list_files(&dir)?.iter().map(|f| self.script_view(&p.name, f, &dir.join(f))).collect()
    }

    /// The latest invocations of a project's scripts, newest first.
    pub fn script_logs(
        &self,
        caller: &Caller,
        project: &ProjectId,
        limit: u32,
    ) -> Result<Vec<ScriptInvocation>, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        Ok(self.store.script_logs(project, limit.clamp(1, LOG_KEEP))?)
    }

    /// Replaces a project's secrets; answers their names.
    pub fn set_secrets(
        &self,
        caller: &Caller,
        project: &ProjectId,
        secrets: &PutSecrets,
    ) -> Result<SecretNames, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        validate_secrets(secrets)?;
        let sealed = secrets
            .iter()
            .map(|(name, value)| (name.clone(), self.secret_key.seal(project.as_str(), name, value)))
            .collect();
        self.store.set_secrets(project, &sealed)?;
        tracing::info!(project = %project, count = secrets.len(), "secrets replaced");
        Ok(SecretNames { names: secrets.keys().cloned().collect() })
    }

    /// The names of a project's secrets (never their values).
    pub fn secret_names(&self, caller: &Caller, project: &ProjectId) -> Result<SecretNames, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        Ok(SecretNames { names: self.store.secrets(project)?.into_keys().collect() })
    }

    /// A project's secrets, opened.
    fn open_secrets(&self, project: &ProjectId) -> Result<std::collections::BTreeMap<String, String>, Error> {
        self.store
            .secrets(project)?
            .into_iter()
            .map(|(name, stored)| {
                let value = self.secret_key.unseal(project.as_str(), &name, &stored).map_err(|e| Error::Conflict {
                    code: "secret_unreadable",
                    message: format!("{e}: set the project's secrets again"),
                })?;
                Ok((name, value))
            })
            .collect()
    }

    /// Seals the secrets stored before sealing existed (once, at start).
    pub(crate) fn seal_plain_secrets(&self) -> Result<(), Error> {
        for project in self.store.projects()? {
            let stored = self.store.secrets(&project.id)?;
            if stored.values().all(|v| crate::sealed::SecretKey::is_sealed(v)) {
                continue;
            }
            let sealed = stored
                .into_iter()
                .map(|(name, value)| {
                    let value = if crate::sealed::SecretKey::is_sealed(&value) {
                        value
                    } else {
                        self.secret_key.seal(project.id.as_str(), &name, &value)
                    };
                    (name, value)
                })
                .collect();
            self.store.set_secrets(&project.id, &sealed)?;
            tracing::info!(project = %project.id, "sealed the secrets stored in plain text");
        }
        Ok(())
    }

    /// The route table of a project, read again after [`ROUTES_TTL`].
    fn script_routes(&self, project: &ProjectId) -> Result<Arc<Vec<Route>>, Error> {
        if let Some((at, routes)) = lock(&self.state.routes).get(project)
            && at.elapsed() < ROUTES_TTL
        {
            return Ok(Arc::clone(routes));
        }
        let routes: Arc<Vec<Route>> = Arc::new(
            list_files(&self.scripts_dir(project))?
                .iter()
                .filter(|f| !cubby_model::is_private_script(f))
                .map(|f| Route::of(f))
                .collect(),
        );
        lock(&self.state.routes).insert(project.clone(), (Instant::now(), Arc::clone(&routes)));
        Ok(routes)
    }

    /// The compiled script at `path`, from the cache while the file is
    /// unchanged.
    fn compiled(&self, file: &str, path: &Path) -> Result<Arc<Compiled>, Error> {
        // Opened under the scripts folder's fd with openat2: no link is
        // followed, nothing outside the folder is reached, and the file
        // checked is the file read.
        let unreadable = || Error::invalid("path", format!("{file} is not a regular file of the project's scripts/"));
        let dir =
            path.ancestors().nth(file.split('/').count()).filter(|d| d.join(file) == path).ok_or_else(unreadable)?;
        let opened = Beneath::open(dir).and_then(|root| root.file(Path::new(file))).map_err(|_| unreadable())?;
        let meta = opened.metadata().map_err(Error::io("stat", path))?;
        let version = FileVersion::of(&meta);
        if let Some((v, c)) = lock(&self.state.compiled).get(path)
            && Some(*v) == version
        {
            return Ok(Arc::clone(c));
        }
        let mut text = String::new();
        let limit = u64::try_from(MAX_SCRIPT_BYTES).unwrap_or(u64::MAX) + 1;
        std::io::Read::read_to_string(&mut std::io::Read::take(opened, limit), &mut text)
            .map_err(Error::io("read", path))?;
        if text.len() > MAX_SCRIPT_BYTES {
            return Err(Error::invalid("content", format!("{file} is larger than {MAX_SCRIPT_BYTES} bytes")));
        }
        let compiled = Arc::new(compile(file, &text)?);
        if let Some(version) = version {
            lock(&self.state.compiled).insert(path.to_path_buf(), (version, Arc::clone(&compiled)));
        }
        Ok(compiled)
    }

    /// The lock of a `@concurrent false` script.
    fn serial_lock(&self, path: &Path) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(lock(&self.state.serial).entry(path.to_path_buf()).or_default())
    }

    /// Removes a project's folder (its scripts), when the project goes.
    pub(crate) fn remove_project_files(&self, project: &ProjectId) -> Result<(), Error> {
        let dir = self.data_dir.join("projects").join(project.as_str());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &dir)(e)),
        }
        // Its compiled files (and their bytecode) go with it.
        lock(&self.state.compiled).retain(|path, _| !path.starts_with(&dir));
        self.forget_routes(project);
        Ok(())
    }
}

/// Reads the magic comments and strips TypeScript types.
fn compile(file: &str, text: &str) -> Result<Compiled, Error> {
    let magic = cubby_scripts::parse_magic(text).map_err(|e| Error::invalid("content", e.to_string()))?;
    if let Some(unknown) = magic.on.iter().find(|t| cubby_model::EventType::parse(t).is_none()) {
        let known: Vec<&str> = cubby_model::EventType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(Error::invalid(
            "content",
            format!("@on names `{unknown}`, which is not an event type: use one of {}", known.join(", ")),
        ));
    }
    let js = if file.ends_with(".ts") {
        cubby_scripts::strip_types(text, file).map_err(|e| Error::invalid("content", e.to_string()))?
    } else {
        text.to_string()
    };
    Ok(Compiled { magic, code: ModuleCode::new(file, js) })
}

/// The files one project's scripts may import: its own `scripts/`, each
/// file compiled (and its bytecode kept) through the service's cache.
pub(crate) struct ProjectModules {
    pub service: Arc<ScriptService>,
    pub dir: PathBuf,
}

impl ModuleSource for ProjectModules {
    fn module(&self, path: &str) -> Result<Option<Arc<ModuleCode>>, String> {
        if validate_script_path(path).is_err() {
            return Ok(None);
        }
        let full = self.dir.join(path);
        // A quick look first, so a candidate that is not there is `None`
        // (the read itself goes through the folder's fd).
        if !std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        match self.service.compiled(path, &full) {
            Ok(compiled) => Ok(Some(Arc::clone(&compiled.code))),
            Err(Error::Invalid(v)) => Err(v.message),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Script files under `dir`, relative and sorted; hidden entries skipped.
fn list_files(dir: &Path) -> Result<Vec<String>, Error> {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) -> Result<(), Error> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("list", dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("list", dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(Error::io("stat", &path))?;
            if kind.is_dir() && depth < 8 {
                walk(root, &path, depth + 1, out)?;
            } else if kind.is_file()
                && let Ok(rel) = path.strip_prefix(root)
                && let Some(rel) = rel.to_str()
                && validate_script_path(rel).is_ok()
            {
                out.push(rel.to_string());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, 1, &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;

//! The models page's API: what is installed, how big, under which licence; pull with live
//! progress, verify, remove. Model names from the URL are checked before any path is built.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use iris_models::convert::ExternalConverter;
use iris_models::store::InstallState;
use iris_models::{Catalog, ModelEntry, Progress, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A pull in progress or just ended.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Job {
    pub stage: String,
    pub done: u64,
    pub total: Option<u64>,
    pub finished: bool,
    pub error: Option<String>,
}

pub struct ModelShelf {
    pub store: Store,
    pub catalog: Catalog,
    converter: Arc<dyn ExternalConverter + Send + Sync>,
    jobs: Mutex<HashMap<String, Job>>,
}

impl ModelShelf {
    pub fn new(store: Store, catalog: Catalog, converter: Arc<dyn ExternalConverter + Send + Sync>) -> Self {
        Self { store, catalog, converter, jobs: Mutex::default() }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The catalog entry named by a URL segment: 400 for a name that could leave the models
    /// folder, 404 for one the catalog does not list.
    fn entry(&self, id: &str) -> ApiResult<&ModelEntry> {
        if !iris_models::store::is_safe_name(id) {
            return Err(ApiError::BadRequest(format!("{id:?} is not a model name; names are letters, digits, '.', '-' and '_'")));
        }
        self.catalog.get(id).ok_or_else(|| ApiError::NotFound(format!("no model named {id:?} in the catalog")))
    }
}

/// Reports a pull's bytes into its job, for the page to poll.
struct JobProgress<'a> {
    shelf: &'a ModelShelf,
    id: String,
    done: AtomicU64,
}

impl Progress for JobProgress<'_> {
    fn start(&self, label: &str, total: Option<u64>) {
        self.done.store(0, Ordering::Relaxed);
        let mut jobs = self.shelf.jobs();
        let job = jobs.entry(self.id.clone()).or_default();
        job.stage = label.to_owned();
        job.done = 0;
        job.total = total;
    }

    fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(job) = self.shelf.jobs().get_mut(&self.id) {
            job.done = done;
        }
    }

    fn finish(&self) {}

    fn note(&self, line: &str) {
        if let Some(job) = self.shelf.jobs().get_mut(&self.id) {
            job.stage = line.to_owned();
        }
    }
}

/// The models in use: those loaded now (the vision aid's readers among them) and those the
/// settings in force name.
fn in_use(engine: &iris_engine::Engine) -> Vec<String> {
    let c = engine.config();
    let mut ids: Vec<String> = engine.loaded().into_iter().map(|m| m.id).collect();
    ids.extend([&c.models.asr, &c.models.llm, &c.models.tts, &c.models.vad, &c.models.runtime].map(String::clone));
    ids
}

pub async fn list(State(s): State<AppState>) -> Json<Value> {
    let shelf = &s.models;
    let in_use = in_use(&s.engine);
    let default_pack = shelf.catalog.packs.get("default").cloned().unwrap_or_default();
    let jobs = shelf.jobs().clone();
    let mut disk = 0;
    let models: Vec<Value> = shelf
        .catalog
        .models
        .iter()
        .map(|m| {
            let (state, bytes) = match shelf.store.state(m) {
                InstallState::Installed { bytes } => ("installed", Some(bytes)),
                InstallState::Partial => ("partial", None),
                InstallState::Missing => ("missing", None),
            };
            disk += bytes.unwrap_or(0);
            json!({
                "id": m.id, "task": m.task, "format": m.format, "licence": m.licence, "description": m.description,
                "size": m.files.iter().map(|f| f.size).sum::<u64>(),
                "state": state, "installed_bytes": bytes,
                "in_use": in_use.contains(&m.id),
                "default": default_pack.contains(&m.id),
                "job": jobs.get(&m.id),
            })
        })
        .collect();
    Json(json!({ "models": models, "disk_bytes": disk, "models_dir": shelf.store.home().join("models") }))
}

/// Starts fetching a model; `GET /api/models` shows its progress.
pub async fn pull(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<(StatusCode, Json<Value>)> {
    s.models.entry(&id)?;
    claim(&s, &id)?;
    let st = s.clone();
    tokio::task::spawn_blocking(move || fetch(&st, &id));
    Ok((StatusCode::ACCEPTED, Json(json!({ "started": true }))))
}

/// Starts fetching every model of a pack that is not installed, one after another (the first
/// boot's "fetch the default pack"); each shows its progress as a single pull does.
pub async fn pull_pack(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<(StatusCode, Json<Value>)> {
    let Some(ids) = s.models.catalog.packs.get(&name).cloned() else {
        let known: Vec<&String> = s.models.catalog.packs.keys().collect();
        return Err(ApiError::NotFound(format!("no pack named {name:?} (packs: {known:?})")));
    };
    let wanted: Vec<String> = ids
        .into_iter()
        .filter(|id| s.models.catalog.get(id).is_some_and(|e| !matches!(s.models.store.state(e), InstallState::Installed { .. })))
        .filter(|id| claim(&s, id).is_ok())
        .collect();
    let st = s.clone();
    let started = wanted.clone();
    tokio::task::spawn_blocking(move || {
        for id in &wanted {
            fetch(&st, id);
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "started": started }))))
}

/// Marks `id` as being fetched, unless it already is.
fn claim(s: &AppState, id: &str) -> ApiResult<()> {
    let mut jobs = s.models.jobs();
    if jobs.get(id).is_some_and(|j| !j.finished) {
        return Err(ApiError::Conflict(format!("{id} is already being fetched")));
    }
    jobs.insert(id.to_owned(), Job { stage: "waiting".into(), ..Job::default() });
    Ok(())
}

/// Fetches one model into its job (on the blocking pool).
fn fetch(st: &AppState, id: &str) {
    st.engine.stats.log("info", format!("pulling {id}"));
    let shelf = &st.models;
    let progress = JobProgress { shelf, id: id.to_owned(), done: AtomicU64::new(0) };
    let result = match shelf.entry(id) {
        Ok(entry) => iris_models::pull::pull(&shelf.store, entry, shelf.converter.as_ref(), &progress).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut jobs = shelf.jobs();
    let job = jobs.entry(id.to_owned()).or_default();
    job.finished = true;
    match result {
        Ok(_) => {
            job.stage = "installed".into();
            st.engine.stats.log("info", format!("{id} installed"));
            drop(jobs);
            // On a box set up from nothing, the assistant starts once its last model is in.
            st.engine.complete();
        }
        Err(e) => {
            job.error = Some(e.clone());
            st.engine.stats.log("error", format!("pulling {id} failed: {e}"));
        }
    }
}

#[derive(Deserialize)]
pub struct ImportFrom {
    path: String,
}

#[derive(Deserialize)]
pub struct UploadName {
    name: String,
}

/// Installs models from an archive uploaded from the browser (`.tar`, `.tar.gz`, `.tgz`, `.zip`:
/// e.g. a bundle made by `iris bundle create` and packed on another computer). The archive's
/// declared length is checked against the limit and the free disk (it is kept, then unpacked,
/// then installed) before a byte is written; it is streamed to the staging folder, never held in
/// memory, and removed once imported or refused.
pub async fn upload(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<UploadName>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json<Value>> {
    let name = q.name;
    let lower = name.to_lowercase();
    if !iris_models::store::is_safe_name(&name) || ![".tar", ".tar.gz", ".tgz", ".zip"].iter().any(|x| lower.ends_with(x)) {
        return Err(ApiError::BadRequest(format!(
            "{name:?}: send a .tar, .tar.gz, .tgz or .zip archive (a name of letters, digits, '.', '-' and '_')"
        )));
    }
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .ok_or_else(|| ApiError::BadRequest("send the archive with its length (Content-Length)".into()))?;
    let limit = crate::limits::MODEL_ARCHIVE_LIMIT;
    if declared > limit {
        return Err(ApiError::TooLarge(format!("the archive is {declared} bytes; the Models page takes at most {limit}")));
    }
    let staging = s.models.store.staging_dir();
    let free = iris_models::guard::free_bytes(&staging).unwrap_or(u64::MAX);
    if declared.saturating_mul(5) / 2 > free {
        return Err(ApiError::TooLarge(format!(
            "the archive is {} MB and installing it needs about {} MB free, but {} MB are; remove a model first",
            declared / 1_000_000,
            declared.saturating_mul(5) / 2 / 1_000_000,
            free / 1_000_000
        )));
    }
    let dir = staging.join(format!("upload-{}", crate::auth::random_hex(8)));
    let saved = receive(body, &dir, &name, declared).await;
    let result = match saved {
        Ok(file) => install_from(&s, file.clone(), "an upload").await.map_err(|e| match e {
            ApiError::BadRequest(m) => ApiError::BadRequest(m.replace(&file.display().to_string(), &name)),
            other => other,
        }),
        Err(e) => Err(e),
    };
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    Ok(Json(json!({ "imported": result? })))
}

/// Installs what `path` holds on the blocking pool (each file checked against the catalog's
/// sha256), logs it, and lets the assistant start if that was the last model it needed.
async fn install_from(s: &AppState, path: std::path::PathBuf, from: &str) -> ApiResult<iris_models::import::Imported> {
    let st = s.clone();
    let imported = tokio::task::spawn_blocking(move || {
        let shelf = &st.models;
        iris_models::import::import(&shelf.store, &shelf.catalog, &path, shelf.converter.as_ref(), &iris_models::Quiet)
    })
    .await?
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    s.engine.stats.log("info", format!("imported from {from}: {}", imported.keys().cloned().collect::<Vec<_>>().join(", ")));
    s.engine.complete();
    Ok(imported)
}

/// Streams `body` into `dir/name`, refusing more bytes than `declared`. The file is written
/// on the blocking pool, a bounded queue of chunks behind the network.
async fn receive(body: axum::body::Body, dir: &std::path::Path, name: &str, declared: u64) -> ApiResult<std::path::PathBuf> {
    use tokio_stream::StreamExt as _;
    let path = dir.join(name);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(16);
    let (d, p) = (dir.to_owned(), path.clone());
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&d)?;
        let mut file = std::fs::File::create(&p)?;
        while let Some(chunk) = rx.blocking_recv() {
            file.write_all(&chunk)?;
        }
        file.sync_all()
    });
    let mut got = 0u64;
    let mut stream = body.into_data_stream();
    let mut failed = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failed = Some(ApiError::BadRequest(format!("the upload broke off: {e}")));
                break;
            }
        };
        got += chunk.len() as u64;
        if got > declared {
            failed = Some(ApiError::BadRequest("the archive is longer than its declared length".into()));
            break;
        }
        if tx.send(chunk).await.is_err() {
            break; // The writer stopped: its error is below.
        }
    }
    drop(tx);
    let written = writer.await?;
    if let Some(e) = failed {
        return Err(e);
    }
    written.map_err(|e| ApiError::Internal(format!("cannot keep the upload: {e}")))?;
    if got != declared {
        return Err(ApiError::BadRequest(format!("the upload broke off after {got} of {declared} bytes; send it again")));
    }
    Ok(path)
}

/// Installs models from a folder or archive on the box (a USB stick, a bundle made by
/// `iris bundle create`), each file checked against the catalog's sha256.
pub async fn import(State(s): State<AppState>, Json(from): Json<ImportFrom>) -> ApiResult<Json<Value>> {
    if from.path.is_empty() || from.path.len() > 4096 || !from.path.starts_with('/') {
        return Err(ApiError::BadRequest("`path` must be an absolute path on the box, e.g. /media/usb/iris-bundle".into()));
    }
    let imported = install_from(&s, std::path::PathBuf::from(&from.path), "a folder").await?;
    Ok(Json(json!({ "imported": imported })))
}

pub async fn verify(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.models.entry(&id)?;
    let st = s.clone();
    let result = tokio::task::spawn_blocking(move || {
        let entry = st.models.entry(&id).map_err(|e| e.to_string())?;
        st.models.store.verify(entry, true, &iris_models::Quiet).map_err(|e| e.to_string())?;
        // Models copied in by hand (a USB stick) are found whole here: the assistant may start.
        st.engine.complete();
        Ok::<_, String>(())
    })
    .await?;
    Ok(Json(match result {
        Ok(()) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "problem": e }),
    }))
}

/// Removes an installed model, unless the settings in force use it.
pub async fn remove(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let entry = s.models.entry(&id)?;
    if in_use(&s.engine).contains(&entry.id) {
        return Err(ApiError::Conflict(format!(
            "{id} is in use; choose another model in the settings first (the vision aid's readers are in use while no vision model is set)"
        )));
    }
    let freed = s.models.store.remove(entry).map_err(|e| ApiError::Internal(e.to_string()))?;
    s.engine.stats.log("info", format!("{id} removed ({freed} bytes freed)"));
    Ok(Json(json!({ "freed_bytes": freed })))
}

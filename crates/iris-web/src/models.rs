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
use serde::Serialize;
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

/// The models the settings in force use.
fn in_use(c: &iris_config::Config) -> [&String; 5] {
    [&c.models.asr, &c.models.llm, &c.models.tts, &c.models.vad, &c.models.runtime]
}

pub async fn list(State(s): State<AppState>) -> Json<Value> {
    let shelf = &s.models;
    let config = s.engine.config();
    let in_use = in_use(&config);
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
                "in_use": in_use.iter().any(|u| **u == m.id),
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
    {
        let mut jobs = s.models.jobs();
        if jobs.get(&id).is_some_and(|j| !j.finished) {
            return Err(ApiError::Conflict(format!("{id} is already being fetched")));
        }
        jobs.insert(id.clone(), Job { stage: "starting".into(), ..Job::default() });
    }
    s.engine.stats.log("info", format!("pulling {id}"));
    let st = s.clone();
    tokio::task::spawn_blocking(move || {
        let shelf = &st.models;
        let progress = JobProgress { shelf, id: id.clone(), done: AtomicU64::new(0) };
        let result = match shelf.entry(&id) {
            Ok(entry) => iris_models::pull::pull(&shelf.store, entry, shelf.converter.as_ref(), &progress).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut jobs = shelf.jobs();
        let job = jobs.entry(id.clone()).or_default();
        job.finished = true;
        match result {
            Ok(_) => {
                job.stage = "installed".into();
                st.engine.stats.log("info", format!("{id} installed"));
                drop(jobs);
                // On a box set up from nothing, the assistant starts once its last model is in.
                st.engine.complete();
                return;
            }
            Err(e) => {
                job.error = Some(e.clone());
                st.engine.stats.log("error", format!("pulling {id} failed: {e}"));
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "started": true }))))
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
    if in_use(&s.engine.config()).contains(&&entry.id) {
        return Err(ApiError::Conflict(format!("{id} is in use; choose another model in the settings first")));
    }
    let freed = s.models.store.remove(entry).map_err(|e| ApiError::Internal(e.to_string()))?;
    s.engine.stats.log("info", format!("{id} removed ({freed} bytes freed)"));
    Ok(Json(json!({ "freed_bytes": freed })))
}

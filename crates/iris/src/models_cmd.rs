//! `iris models …`: pull, list, verify, remove, import.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use iris_models::pull::{pull, Pulled};
use iris_models::store::InstallState;
use iris_models::{Quiet, Store};

use crate::backends::{catalog, Converters};
use crate::progress::Bars;

#[derive(Subcommand)]
pub enum ModelsCmd {
    /// Download (or convert) models or a pack, checking every sha256. Resumes partial downloads.
    Pull {
        /// Model ids or pack names (e.g. `default`).
        #[arg(required = true)]
        names: Vec<String>,
        /// The runtime libraries for another machine's architecture (e.g. `aarch64`, to bundle
        /// them for a board); kept beside this machine's own.
        #[arg(long, value_parser = iris_models::catalog::ARCHES)]
        arch: Option<String>,
    },
    /// Show the catalog: what is installed, sizes, licences.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Recompute the sha256 of installed models (all, or those named).
    Verify { names: Vec<String> },
    /// Delete installed models.
    Remove {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Install models from a folder or archive (e.g. a USB stick), with no network; with --as,
    /// convert your own faster-whisper model folder (any size) and list it under that name.
    Import {
        path: PathBuf,
        /// The name for your own faster-whisper model (then `[models] asr = "NAME"`).
        #[arg(long = "as", value_name = "NAME")]
        as_id: Option<String>,
    },
}

pub fn run(cmd: ModelsCmd) -> Result<ExitCode> {
    let store = Store::from_env()?;
    let catalog = catalog(&store)?;
    let bars = Bars::new();
    match cmd {
        ModelsCmd::Pull { names, arch } => {
            let catalog = match arch {
                Some(a) => catalog.clone().for_arch(&a),
                None => catalog.clone(),
            };
            let mut failed = Vec::new();
            for name in &names {
                for model in catalog.resolve(name)? {
                    match pull(&store, model, &Converters, &bars) {
                        Ok(Pulled::AlreadyInstalled) => eprintln!("{}: already installed", model.id),
                        Ok(Pulled::Installed { from }) => eprintln!("{}: installed from {from}", model.id),
                        Err(e) => {
                            eprintln!("{}: failed", model.id);
                            failed.push(e.to_string());
                        }
                    }
                }
            }
            if !failed.is_empty() {
                bail!("{}", failed.join("; "));
            }
        }
        ModelsCmd::List { json } => {
            let rows: Vec<serde_json::Value> = catalog
                .models
                .iter()
                .map(|m| {
                    let state = store.state(m);
                    let size: u64 = m.files.iter().map(|f| f.size).sum();
                    let packs: Vec<&str> = catalog.packs.iter().filter(|(_, ids)| ids.contains(&m.id)).map(|(p, _)| p.as_str()).collect();
                    serde_json::json!({
                        "id": m.id, "task": m.task, "format": m.format, "licence": m.licence, "size": size,
                        "installed": matches!(state, InstallState::Installed { .. }),
                        "partial": state == InstallState::Partial, "packs": packs,
                        "path": store.model_dir(&m.id).display().to_string(),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!("{:<26} {:<8} {:<10} {:>9}  {:<24} packs", "model", "task", "installed", "size", "licence");
                for r in rows {
                    let installed = if r["installed"] == true {
                        "yes"
                    } else if r["partial"] == true {
                        "partial"
                    } else {
                        "no"
                    };
                    let packs: Vec<String> =
                        r["packs"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_owned)).collect();
                    println!(
                        "{:<26} {:<8} {:<10} {:>9}  {:<24} {}",
                        r["id"].as_str().unwrap_or(""),
                        r["task"].as_str().unwrap_or(""),
                        installed,
                        human(r["size"].as_u64().unwrap_or(0)),
                        r["licence"].as_str().unwrap_or(""),
                        packs.join(",")
                    );
                }
                println!("models folder: {}", store.home().join("models").display());
            }
        }
        ModelsCmd::Verify { names } => {
            let models = if names.is_empty() {
                catalog.models.iter().filter(|m| store.state(m) != InstallState::Missing).collect()
            } else {
                let mut v = Vec::new();
                for n in &names {
                    v.extend(catalog.resolve(n)?);
                }
                v
            };
            let mut bad = Vec::new();
            for m in models {
                match store.verify(m, true, &bars) {
                    Ok(()) => eprintln!("{}: ok", m.id),
                    Err(e) => {
                        eprintln!("{}: {e}", m.id);
                        bad.push(m.id.clone());
                    }
                }
            }
            if !bad.is_empty() {
                bail!("{} model(s) failed verification: {}; run `iris models pull {}`", bad.len(), bad.join(", "), bad.join(" "));
            }
        }
        ModelsCmd::Remove { names } => {
            for n in &names {
                for m in catalog.resolve(n)? {
                    let freed = store.remove(m)?;
                    if iris_models::own::is_own(m) {
                        iris_models::own::forget(&store, &m.id)?;
                    }
                    eprintln!("{}: removed ({})", m.id, human(freed));
                }
            }
        }
        ModelsCmd::Import { path, as_id: Some(id) } => {
            let entry = iris_models::own::import_whisper(&store, &catalog, &path, &id, &bars)?;
            eprintln!("{id}: converted and installed ({}); use it with `[models] asr = \"{id}\"`", human(entry.files[0].size));
        }
        ModelsCmd::Import { path, as_id: None } => {
            let imported = iris_models::import::import(&store, &catalog, &path, &Converters, &Quiet)?;
            for (id, how) in imported {
                eprintln!("{id}: imported ({how})");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

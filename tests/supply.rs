//! Model supply against a local HTTP server: resume, sha256 refusal, import, verification.
//! Nothing here reaches the network: the "hub" is a thread on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use iris_models::convert::NoExternal;
use iris_models::pull::{pull, Pulled};
use iris_models::{Catalog, ModelsError, Quiet, Store};
use sha2::Digest;

/// Serves `body` at any path, honouring `Range: bytes=N-`; records each request's Range.
fn serve(body: Vec<u8>, requests: usize) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(v.trim().trim_end_matches('-').to_owned());
                }
            }
            log.lock().unwrap().push(range.clone());
            let start: usize = range.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
            let part = &body[start.min(body.len())..];
            let status = if start > 0 { "206 Partial Content" } else { "200 OK" };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", part.len());
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(part).unwrap();
        }
    });
    (addr, seen)
}

fn blob() -> Vec<u8> {
    (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn catalog(url: &str, sha256: &str, size: usize) -> Catalog {
    let text = format!(
        r#"
        [packs]
        test = ["blob"]
        [[model]]
        id = "blob"
        task = "test"
        format = "bytes"
        licence = "CC0-1.0"
        [[model.file]]
        name = "blob.bin"
        size = {size}
        sha256 = "{sha256}"
        [[model.source]]
        url = "{url}/repo"
        files = ["weights/blob.bin"]
        "#
    );
    Catalog::parse(&text, Path::new("test-catalog.toml")).unwrap()
}

fn installed(store: &Store) -> PathBuf {
    store.home().join("models/blob/blob.bin")
}

#[test]
fn pull_resumes_a_partial_download() {
    let body = blob();
    let (url, seen) = serve(body.clone(), 1);
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path());
    let cat = catalog(&url, &sha(&body), body.len());
    let model = cat.get("blob").unwrap();
    // An earlier attempt stopped after 70,000 bytes.
    let cache = iris_models::fetch::cache_of(&model.sources[0], &store.cache_dir()).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("weights_blob.bin.part"), &body[..70_000]).unwrap();

    let result = pull(&store, model, &NoExternal, &Quiet).unwrap();
    assert!(matches!(result, Pulled::Installed { .. }), "{result:?}");
    assert_eq!(seen.lock().unwrap().as_slice(), [Some("70000".to_owned())], "the download resumed");
    assert_eq!(std::fs::read(installed(&store)).unwrap(), body);
    assert!(!cache.exists(), "the download cache is cleared after install");
    assert_eq!(pull(&store, model, &NoExternal, &Quiet).unwrap(), Pulled::AlreadyInstalled);
}

#[test]
fn part_files_are_joined_in_order() {
    // Registries cap package sizes, so big models ship in parts (gemma3, Whisper base).
    let body = blob();
    let (url, seen) = serve(body.clone(), 2);
    let joined = [body.clone(), body.clone()].concat();
    let text = format!(
        r#"
        [[model]]
        id = "parts"
        task = "test"
        format = "bytes"
        licence = "CC0-1.0"
        [[model.file]]
        name = "whole.bin"
        size = {}
        sha256 = "{}"
        [[model.source]]
        url = "{url}/repo"
        files = ["whole.bin.part1", "whole.bin.part2"]
        convert = "concat"
        "#,
        joined.len(),
        sha(&joined)
    );
    let cat = Catalog::parse(&text, Path::new("parts.toml")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path());
    pull(&store, cat.get("parts").unwrap(), &NoExternal, &Quiet).unwrap();
    assert_eq!(std::fs::read(home.path().join("models/parts/whole.bin")).unwrap(), joined);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_wrong_sha256_is_named_and_nothing_is_installed() {
    let body = blob();
    let (url, _) = serve(body.clone(), 1);
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path());
    let expected = "ab".repeat(32);
    let cat = catalog(&url, &expected, body.len());
    let err = pull(&store, cat.get("blob").unwrap(), &NoExternal, &Quiet).unwrap_err().to_string();
    assert!(err.contains("blob.bin") && err.contains(&expected) && err.contains(&sha(&body)), "{err}");
    assert!(!installed(&store).exists());
    let leftovers: Vec<_> = walk(home.path()).into_iter().filter(|p| p.to_string_lossy().contains("blob")).collect();
    assert!(leftovers.is_empty(), "the bad file must not stay anywhere: {leftovers:?}");
}

#[test]
fn an_unreachable_source_falls_through_with_reasons() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path());
    // Port 9 on loopback: nothing listens there.
    let cat = catalog("http://127.0.0.1:9", &"00".repeat(32), 1);
    let err = pull(&store, cat.get("blob").unwrap(), &NoExternal, &Quiet).unwrap_err();
    assert!(matches!(err, ModelsError::Fetch { ref attempts, .. } if attempts.len() == 1), "{err}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn import_from_a_folder_and_from_an_archive() {
    let body = blob();
    let cat = catalog("http://127.0.0.1:9", &sha(&body), body.len());
    let usb = tempfile::tempdir().unwrap();
    // Named differently on the stick: matched by size and sha256, not by name.
    std::fs::create_dir_all(usb.path().join("models")).unwrap();
    std::fs::write(usb.path().join("models/my-copy.bin"), &body).unwrap();
    std::fs::write(usb.path().join("readme.txt"), "hello").unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path());
    let done = iris_models::import::import(&store, &cat, usb.path(), &NoExternal, &Quiet).unwrap();
    assert_eq!(done.keys().collect::<Vec<_>>(), ["blob"]);
    assert_eq!(std::fs::read(installed(&store)).unwrap(), body);

    // The same from a .tar.gz.
    let archive = usb.path().join("pack.tar.gz");
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&archive).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "pack/blob.bin", body.as_slice()).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let home2 = tempfile::tempdir().unwrap();
    let store2 = Store::new(home2.path());
    iris_models::import::import(&store2, &cat, &archive, &NoExternal, &Quiet).unwrap();
    assert_eq!(std::fs::read(installed(&store2)).unwrap(), body);

    // Nothing usable: a clear error.
    let empty = tempfile::tempdir().unwrap();
    let err =
        iris_models::import::import(&Store::new(tempfile::tempdir().unwrap().path()), &cat, empty.path(), &NoExternal, &Quiet).unwrap_err();
    assert!(err.to_string().contains("found no file of any catalog model"), "{err}");
}

#[test]
fn verification_catches_a_changed_file_and_remove_frees_it() {
    let body = blob();
    let cat = catalog("http://127.0.0.1:9", &sha(&body), body.len());
    let model = cat.get("blob").unwrap();
    let usb = tempfile::tempdir().unwrap();
    std::fs::write(usb.path().join("blob.bin"), &body).unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path());
    iris_models::import::import(&store, &cat, usb.path(), &NoExternal, &Quiet).unwrap();
    assert!(store.main_file(model).is_ok());
    let mut damaged = body.clone();
    damaged[100] ^= 1;
    std::fs::write(installed(&store), &damaged).unwrap();
    let err = store.main_file(model).unwrap_err().to_string();
    assert!(err.contains("sha256") && err.contains("iris models pull blob"), "{err}");
    assert_eq!(store.remove(model).unwrap(), body.len() as u64);
    assert!(matches!(store.main_file(model), Err(ModelsError::NotInstalled { .. })));
}

#[test]
fn the_shipped_catalog_is_complete() {
    let cat = iris_tests::catalog();
    let default = &cat.packs["default"];
    for task in ["asr", "llm", "tts", "vad", "runtime"] {
        assert!(default.iter().any(|id| cat.get(id).unwrap().task == task), "the default pack lacks a {task} model");
    }
    for m in &cat.models {
        assert!(m.sources.len() >= 1 && !m.licence.is_empty(), "{}", m.id);
        // Upstream first where there is one, then a package source.
        assert!(m.sources.iter().any(|s| !s.pip.is_empty() || s.npm.is_some()), "{} has no package source", m.id);
        assert!(m.files.iter().all(|f| f.size > 0), "{}", m.id);
    }
}

#[test]
fn reading_the_http_server_is_bounded() {
    // The helper server answers exactly the number of requests asked for, then stops.
    let (url, seen) = serve(b"abc".to_vec(), 1);
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.ends_with("abc"));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

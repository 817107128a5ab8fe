//! The Debian package (`deploy/deb.sh`), as a user gets it: installed with apt-get into a clean
//! Debian root, booted with systemd (systemd-nspawn), the service starting with no models, set up
//! with the code it printed, its default pack fetched from the Models page, a question answered,
//! and the owner still logged in after the service was killed and restarted by systemd. And its
//! binary runs on the x86-64 baseline (an emulated CPU with no AVX), where a build for this
//! machine's CPU dies.
//!
//! `deploy/test.sh` builds the package (`IRIS_DEB`) and a bootstrapped Debian root
//! (`IRIS_DEBIAN_ROOT`, never changed: each test works on a copy).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{agent, mirror_catalog, session, try_text};

fn needed(var: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| panic!("{var} is not set: run ./deploy/test.sh, which makes it"));
    assert!(p.exists(), "{var}={} does not exist: run ./deploy/test.sh", p.display());
    p
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A booted container; powered off when dropped.
struct Booted(Child);

impl Drop for Booted {
    fn drop(&mut self) {
        // SIGTERM asks nspawn to shut the container down cleanly.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pids running the file `exe` (the container shares this machine's kernel; its processes'
/// paths read from here are the container's own, so the file is matched by device and inode).
fn pids_of(exe: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(exe).map(|m| (m.dev(), m.ino())).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::metadata(format!("/proc/{pid}/exe")).is_ok_and(|m| (m.dev(), m.ino()) == want))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_package_installs_and_runs_as_a_service_on_a_clean_debian() {
    let deb = needed("IRIS_DEB");
    let pristine = needed("IRIS_DEBIAN_ROOT");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    run(Command::new("cp").arg("-a").arg(&pristine).arg(&root));
    std::fs::copy(&deb, root.join("tmp/iris.deb")).unwrap();

    // apt-get resolves the package's dependencies (fetched beforehand into the root's cache).
    let installed = run(Command::new("chroot")
        .arg(&root)
        .args(["apt-get", "install", "-y", "--no-install-recommends", "/tmp/iris.deb"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(installed.contains("/var/lib/iris/setup-code"), "the install does not say where the setup code is: {installed}");
    assert!(root.join("etc/systemd/system/multi-user.target.wants/iris.service").symlink_metadata().is_ok(), "the service is not enabled");
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let iris_uid: u32 = passwd.lines().find(|l| l.starts_with("iris:")).and_then(|l| l.split(':').nth(2)).unwrap().parse().unwrap();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    for g in ["audio", "video"] {
        let members = group.lines().find(|l| l.starts_with(&format!("{g}:"))).and_then(|l| l.rsplit(':').next()).unwrap_or_default();
        assert!(members.split(',').any(|m| m == "iris"), "iris is not in {g}: {group}");
    }

    // The service's ports and, for the test only, a catalog whose sources are a mirror here.
    let port = free_port();
    let catalog = root.join("etc/iris-test-catalog.toml");
    let pack = mirror_catalog(&catalog);
    std::fs::write(
        root.join("etc/default/iris"),
        format!("IRIS_LISTEN=127.0.0.1:{port}\nIRIS_WYOMING=off\nIRIS_CATALOG=/etc/iris-test-catalog.toml\n"),
    )
    .unwrap();
    let log = std::fs::File::create(work.path().join("boot.log")).unwrap();
    let _booted = Booted(
        Command::new("systemd-nspawn")
            .arg("-D")
            .arg(&root)
            .args(["--register=no", "--keep-unit", "--boot", "--quiet"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn (Debian's systemd-container)"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let boot_log = || std::fs::read_to_string(work.path().join("boot.log")).unwrap_or_default();
    let answers = || agent().get(&format!("{url}/api/state")).call().is_ok_and(|r| r.status() == 200);
    let limit = Duration::from_secs(120);
    let deadline = Instant::now() + limit;
    while !answers() {
        assert!(Instant::now() < deadline, "the service did not answer: {}", boot_log());
        std::thread::sleep(Duration::from_millis(300));
    }

    // It runs as `iris`, in audio and video, without new privileges.
    let exe = root.join("usr/bin/iris");
    let pids = pids_of(&exe);
    assert_eq!(pids.len(), 1, "{pids:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert!(field("Uid:").split_whitespace().skip(1).all(|u| u == iris_uid.to_string()), "{status}");
    assert!(field("NoNewPrivs:").ends_with('1'), "{status}");
    assert!(field("CapEff:").ends_with("0000000000000000"), "{status}");

    // No models, and setup needs the code it printed (kept for the owner only).
    let code_file = root.join("var/lib/iris/setup-code");
    let code = std::fs::read_to_string(&code_file).unwrap().trim().to_owned();
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&code_file).unwrap();
        assert_eq!((meta.uid(), meta.permissions().mode() & 0o077), (iris_uid, 0), "the setup code is readable by others");
    }
    let wrong = agent()
        .post(&format!("{url}/api/setup"))
        .header("content-type", "application/json")
        .send(serde_json::json!({ "password": common::PASSWORD, "code": "0000-0000-0000" }).to_string().as_bytes())
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let owner = session(&url, "/api/setup", &code);
    let status = |s: &(String, String)| {
        let mut r = agent().get(&format!("{url}/api/status")).header("cookie", &s.0).call().unwrap();
        let code = r.status().as_u16();
        (code, serde_json::from_str::<serde_json::Value>(&r.body_mut().read_to_string().unwrap()).unwrap_or_default())
    };
    let (_, st) = status(&owner);
    assert!(st["missing"].as_str().is_some_and(|m| m.contains("not installed")), "{st}");

    // The panel over HTTPS, with the certificate the service made.
    let pem = std::fs::read(root.join("var/lib/iris/tls/cert.pem")).unwrap();
    let roots = vec![ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned()];
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots))).build();
    let secure: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).build().into();
    assert_eq!(secure.get(&format!("https://localhost:{port}/api/state")).call().unwrap().status(), 200);

    // The default pack, fetched on the Models page.
    let post = |path: &str| {
        agent()
            .post(&format!("{url}{path}"))
            .header("cookie", &owner.0)
            .header("x-csrf-token", &owner.1)
            .header("content-type", "application/json")
            .send(b"{}")
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post("/api/models/pack/default/pull"), 202);
    wait_for("the default pack", Duration::from_secs(300), || {
        let mut r = agent().get(&format!("{url}/api/models")).header("cookie", &owner.0).call().unwrap();
        let list: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let models = list["models"].as_array().unwrap();
        assert!(models.iter().all(|m| !m["job"]["error"].is_string()), "{list}");
        models.iter().filter(|m| pack.iter().any(|p| m["id"] == p.as_str())).all(|m| m["state"] == "installed")
    });
    wait_for("the assistant", Duration::from_secs(120), || status(&owner).1["missing"].is_null());
    let answer = try_text(&url, &owner, "What is the capital of France?");
    assert!(answer.contains("Paris"), "{answer}");

    // Killed, the service is restarted by systemd, and the owner is still logged in.
    unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    wait_for("the restart", Duration::from_secs(60), || pids_of(&exe).iter().any(|p| *p != pids[0]) && answers());
    assert_eq!(status(&owner).0, 200, "the owner was logged out by the restart");
}

/// The package's binary runs on a CPU with nothing beyond the x86-64 baseline (qemu's `qemu64`):
/// it starts, finds no AVX and says so, and speaks (Piper on ONNX Runtime, espeak-ng). Its
/// whisper.cpp (the C++ that would otherwise be built for this machine's CPU) holds no AVX
/// instruction at all: read from its objects, since transcribing under emulation takes 5 to 10
/// minutes. The build for this machine's CPU dies there with an illegal instruction, so the
/// emulated CPU has teeth.
#[test]
fn the_package_binary_runs_on_a_baseline_x86_64_cpu() {
    let deb = needed("IRIS_DEB");
    let work = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(work.path()));
    let baseline = work.path().join("usr/bin/iris");
    let qemu = |args: &[&str]| {
        Command::new("qemu-x86_64").args(["-cpu", "qemu64"]).arg(&baseline).args(args).output().expect("qemu-x86_64 (Debian's qemu-user)")
    };
    let doctor = qemu(&["doctor", "--json", "--listen", "127.0.0.1:0", "--wyoming", "off"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout)
        .unwrap_or_else(|e| panic!("doctor under qemu64 ({e}): {}", String::from_utf8_lossy(&doctor.stderr)));
    let cpu =
        report["findings"].as_array().unwrap().iter().filter(|f| f["area"] == "cpu").map(|f| f["what"].to_string()).collect::<String>();
    assert!(cpu.contains("none beyond x86-64") && cpu.contains("scalar kernel"), "{report}");
    let spoken = work.path().join("hello.wav");
    let said = qemu(&["say", "Hello there.", "--out", spoken.to_str().unwrap()]);
    assert!(said.status.success(), "{}", String::from_utf8_lossy(&said.stderr));
    let samples = iris_audio::read_wav(&spoken).unwrap().samples;
    assert!(samples.len() > 8_000 && samples.iter().any(|s| s.abs() > 0.05), "the voice said nothing");

    // whisper.cpp's static libraries as deploy/deb.sh built them: no 256- or 512-bit register.
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/deb/release/build");
    let mut libs = Vec::new();
    for dir in std::fs::read_dir(&build).unwrap().flatten().filter(|d| d.file_name().to_string_lossy().starts_with("whisper-rs-sys-")) {
        libs.extend(
            std::fs::read_dir(dir.path().join("out/lib"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "a")),
        );
    }
    assert!(libs.len() >= 3, "whisper.cpp's libraries are not in {}: {libs:?}", build.display());
    for lib in &libs {
        let dis = run(Command::new("objdump").arg("-d").arg(lib));
        let wide = dis.lines().filter(|l| l.contains("%ymm") || l.contains("%zmm")).count();
        assert_eq!(wide, 0, "{} holds {wide} AVX instructions", lib.display());
    }

    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        let question = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/question.wav");
        let native =
            Command::new("qemu-x86_64").args(["-cpu", "qemu64", env!("CARGO_BIN_EXE_iris"), "transcribe"]).arg(&question).output().unwrap();
        assert!(!native.status.success(), "the build for this CPU ran on the baseline too; the test cannot tell them apart");
    }
}

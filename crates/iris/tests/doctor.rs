//! `iris doctor` on this machine: what works is `ok`, what is configured and cannot work is a
//! problem with its fix, and the exit code says whether there is one.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const IRIS: &str = env!("CARGO_BIN_EXE_iris");

fn doctor(home: &Path, args: &[&str]) -> (Output, Value) {
    // The settings' own default language model, not the one the suite pins (IRIS_DEFAULT_LLM).
    let out = Command::new(IRIS)
        .arg("doctor")
        .arg("--json")
        .args(args)
        .env("IRIS_HOME", home)
        .env("IRIS_DEFAULT_LLM", "")
        .output()
        .expect("run iris");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    let problems = v["findings"].as_array().unwrap().iter().filter(|f| f["level"] == "problem").count();
    assert_eq!(v["problems"].as_u64(), Some(problems as u64), "{v}");
    assert_eq!(out.status.success(), problems == 0, "the exit code follows the problems: {v}");
    (out, v)
}

fn finding<'a>(v: &'a Value, area: &str) -> Vec<&'a Value> {
    v["findings"].as_array().unwrap().iter().filter(|f| f["area"] == area).collect()
}

/// The installed default pack: every model is `ok`, the language model's engine and memory plan
/// are said, and with free ports and nothing else asked for there is no problem.
#[test]
fn the_installed_pack_is_healthy() {
    let (_, v) = doctor(&common::store_home(), &["--listen", "127.0.0.1:0", "--wyoming", "off"]);
    for area in ["models.asr", "models.llm", "models.tts", "models.vad", "models.runtime"] {
        let f = finding(&v, area);
        assert!(f.len() == 1 && f[0]["level"] == "ok" && f[0]["what"].as_str().unwrap().contains("installed"), "{area}: {v}");
    }
    let llm = finding(&v, "llm");
    assert!(llm[0]["what"].as_str().unwrap().contains("runs on iris-cpu"), "{v}");
    let memory = finding(&v, "memory");
    assert!(memory[0]["what"].as_str().unwrap().contains("the configured models need about"), "{v}");
    assert_eq!(v["problems"], 0, "{v}");
}

/// A box asked for what it cannot give: models not installed, a GPU this build has no code for,
/// a camera that is not there, a port another program holds, a damaged model found by
/// `--verify`. Each is a problem naming its fix, and the exit code is non-zero.
#[test]
fn what_cannot_work_is_a_problem_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[models]\ndevice = \"cuda\"\n\n[camera]\nenabled = true\nindex = 7\n").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    // One real model, copied and then damaged.
    let vad = dir.path().join("models/silero-vad");
    std::fs::create_dir_all(&vad).unwrap();
    for e in std::fs::read_dir(common::store_home().join("models/silero-vad")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), vad.join(e.file_name())).unwrap();
    }
    let onnx = vad.join("silero_vad.onnx");
    let mut bytes = std::fs::read(&onnx).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&onnx, bytes).unwrap();

    let (out, v) = doctor(dir.path(), &["--listen", &port, "--wyoming", "off", "--verify"]);
    assert!(!out.status.success());
    let problem = |area: &str, what: &str, fix: &str| {
        let f = finding(&v, area);
        assert!(
            f.iter()
                .any(|f| f["level"] == "problem" && f["what"].as_str().unwrap().contains(what) && f["fix"].as_str().unwrap().contains(fix)),
            "{area}: wanted a problem with {what:?} and a fix with {fix:?}: {v}"
        );
    };
    problem("models.asr", "whisper-tiny.en is not installed", "iris models pull default");
    problem("models.vad", "silero-vad", "iris models pull silero-vad");
    problem("gpu", "this build has no CUDA", "device = \"cpu\"");
    problem("camera", "camera 7 is not there", "connect a USB camera");
    problem("panel", "taken by another program", "--listen");
    drop(taken);

    // The human form says the same, one finding a line, each fix under its problem.
    let out =
        Command::new(IRIS).args(["doctor", "--listen", "127.0.0.1:0", "--wyoming", "off"]).env("IRIS_HOME", dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("iris doctor: "), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("PROBLEM") && l.contains("models.asr")).unwrap_or_else(|| panic!("{text}"));
    assert!(lines[at + 1].trim_start().starts_with("fix: "), "{text}");
    assert!(!out.status.success());
}

/// The CUDA build run through its launcher (deploy/iris-cuda) on a machine without NVIDIA's
/// driver: one line naming the missing library and the fix, exit 1, instead of the dynamic
/// loader's message. The binary here is a small program linked against a `libcuda.so.1` that
/// is then taken away (CI does not build the CUDA binary; the check is the same).
#[test]
fn the_cuda_build_without_a_driver_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (d, c) = (dir.path(), |p: &str| dir.path().join(p));
    std::fs::write(c("cuda.c"), "int cuInit(unsigned f) { return f; }\n").unwrap();
    std::fs::write(c("main.c"), "int cuInit(unsigned);\nint main(void) { return cuInit(0); }\n").unwrap();
    let gcc = |args: &[&str]| assert!(Command::new("gcc").args(args).current_dir(d).status().expect("gcc").success());
    gcc(&["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", "libcuda.so.1", "cuda.c"]);
    gcc(&["-o", "iris", "main.c", "-L.", "-l:libcuda.so.1", "-Wl,-rpath,$ORIGIN"]);
    let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/iris-cuda");
    let run = || Command::new("sh").arg(&launcher).arg("doctor").env("IRIS_CUDA_BINARY", c("iris")).output().unwrap();
    // With the library there, the launcher runs the binary (which exits with cuInit's 0).
    let with = run();
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));
    std::fs::remove_file(c("libcuda.so.1")).unwrap();
    let without = run();
    let said = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("libcuda.so.1") && said.contains("NVIDIA's driver") && said.contains("CPU build"), "{said}");
}

/// On an edge board `iris doctor` names the board and its profile (firmware/boards/), and
/// `iris board apply` lays the profile's settings over the file's; the doctor then says they
/// are in use. (`IRIS_BOARD_MODEL` stands in for the device tree's model string.)
#[test]
fn a_board_is_recognised_and_its_profile_applied() {
    let dir = tempfile::tempdir().unwrap();
    let board = |home: &Path| {
        let out = Command::new(IRIS)
            .args(["doctor", "--json"])
            .env("IRIS_HOME", home)
            .env("IRIS_BOARD_MODEL", "Raspberry Pi 5 Model B Rev 1.0")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        finding(&v, "board").first().map(|f| (*f).clone()).unwrap_or_else(|| panic!("no board finding: {v}"))
    };
    let before = board(dir.path());
    assert_eq!(before["level"], "note", "{before}");
    assert!(
        before["what"].as_str().unwrap().contains("Raspberry Pi 5") && before["fix"].as_str().unwrap().contains("iris board apply rpi5"),
        "{before}"
    );
    let out = Command::new(IRIS).args(["board", "apply", "rpi5"]).env("IRIS_HOME", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(written.contains("threads = 4") && written.contains("wake_runtime = \"tflite\""), "{written}");
    let after = board(dir.path());
    assert_eq!(after["level"], "ok", "{after}");
    assert!(after["what"].as_str().unwrap().contains("in use"), "{after}");
    let unknown = Command::new(IRIS).args(["board", "apply", "pi9"]).env("IRIS_HOME", dir.path()).output().unwrap();
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("rpi5, rk3588"), "{unknown:?}");
}

//! TensorFlow Lite's delegates as `[tflite]` names them: XNNPACK with its own thread count, and
//! an external delegate plugin, the kind a board's NPU ships (Coral's Edge TPU, NXP's VX).
//!
//! No NPU is reachable here, so the external delegate under test is XNNPACK itself, exported
//! through TensorFlow Lite's external-delegate ABI (`tflite_plugin_create_delegate`) by a
//! plugin compiled from C by the test: Iris loads it as it would `libedgetpu.so.1`, passes the
//! options, and must hear what the built-in path hears; a plugin that refuses its options,
//! a library that is not a plugin, and one anybody may rewrite are each refused with the
//! reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use iris_backend::WakeWord;
use iris_tflite::{Delegate, Runtime};

/// An external delegate plugin: XNNPACK from the TensorFlow Lite library named by the `library`
/// option, with `num_threads`; any other option is refused through `report_error`.
const PLUGIN: &str = r#"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
typedef struct { int num_threads; char rest[252]; } Options;
static void (*destroy)(void *);
void *tflite_plugin_create_delegate(char **keys, char **values, size_t n, void (*report_error)(const char *)) {
    const char *library = NULL; int threads = 1;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(keys[i], "library")) library = values[i];
        else if (!strcmp(keys[i], "num_threads")) threads = atoi(values[i]);
        else { report_error("unknown option:"); report_error(keys[i]); return NULL; }
    }
    void *tflite = library ? dlopen(library, RTLD_NOW) : NULL;
    if (!tflite) { report_error("the option `library` must name TensorFlow Lite"); return NULL; }
    Options (*defaults)(void) = (Options (*)(void))dlsym(tflite, "TfLiteXNNPackDelegateOptionsDefault");
    void *(*create)(const Options *) = (void *(*)(const Options *))dlsym(tflite, "TfLiteXNNPackDelegateCreate");
    destroy = (void (*)(void *))dlsym(tflite, "TfLiteXNNPackDelegateDelete");
    Options options = defaults();
    options.num_threads = threads;
    return create(&options);
}
void tflite_plugin_destroy_delegate(void *delegate) { destroy(delegate); }
"#;

fn plugin(dir: &Path) -> PathBuf {
    let (source, library) = (dir.join("plugin.c"), dir.join("libxnnpack_plugin.so"));
    std::fs::write(&source, PLUGIN).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("a C compiler (cc)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    library
}

fn wake_file(name: &str) -> PathBuf {
    let catalog = iris_tests::catalog();
    let entry = catalog.get("openwakeword-tflite").expect("openwakeword-tflite in the catalog");
    iris_models::Store::from_env().and_then(|s| s.verified_file(entry, name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Hey Jarvis's score on every hop of `wav`, every network on TensorFlow Lite on `delegate`.
fn scores(delegate: Delegate, wav: &Path) -> Vec<f32> {
    let rt = Runtime::load_with(&iris_tests::model("tflite"), delegate).expect("TensorFlow Lite loads");
    let runtimes = iris_wakeword::Runtimes { onnx: None, tflite: Some(&rt) };
    let (mel, embedding, word) = (wake_file("melspectrogram.tflite"), wake_file("embedding_model.tflite"), wake_file("hey_jarvis.tflite"));
    let mut ww =
        iris_wakeword::OpenWakeWord::load(runtimes, &mel, &embedding, &[("hey_jarvis".into(), &word)]).expect("openWakeWord loads");
    let pcm = iris_audio::load_speech(wav).unwrap();
    pcm.chunks_exact(iris_wakeword::HOP).map(|hop| ww.scores(hop).unwrap()[0]).collect()
}

fn session() -> PathBuf {
    let dir = std::env::var_os("IRIS_LOOP_SESSIONS").map(PathBuf::from).expect("IRIS_LOOP_SESSIONS (deploy/test.sh makes them)");
    dir.join("01.wav")
}

#[test]
fn every_delegate_hears_what_the_default_hears() {
    let dir = tempfile::tempdir().unwrap();
    let wav = session();
    let default = scores(Delegate::default(), &wav);
    assert!(default.iter().any(|s| *s >= 0.5), "the default path hears no hey_jarvis in {}", wav.display());
    let library = iris_tests::model("tflite").display().to_string();
    let external =
        Delegate::External { library: plugin(dir.path()), options: vec![("library".into(), library), ("num_threads".into(), "2".into())] };
    for delegate in [Delegate::Xnnpack { threads: 2 }, external] {
        let name = format!("{delegate:?}");
        let got = scores(delegate, &wav);
        assert_eq!(got.len(), default.len());
        let worst = got.iter().zip(&default).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{name}: scores differ from the default's by up to {worst}");
    }
    let rt = Runtime::load_with(&iris_tests::model("tflite"), Delegate::Xnnpack { threads: 2 }).unwrap();
    assert_eq!(rt.delegate(1), "XNNPACK (2 threads)");
}

#[test]
fn a_delegate_that_cannot_work_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let tflite = iris_tests::model("tflite");
    let plugin = plugin(dir.path());
    let model = wake_file("hey_jarvis.tflite");
    // The plugin refuses an option it does not know; Iris says which plugin and what it said.
    let rt =
        Runtime::load_with(&tflite, Delegate::External { library: plugin.clone(), options: vec![("bogus".into(), "1".into())] }).unwrap();
    assert!(rt.delegate(1).contains("libxnnpack_plugin.so"));
    let e = rt.interpreter(&model, 1).err().expect("a refused option is an error").to_string();
    assert!(e.contains("libxnnpack_plugin.so") && e.contains("unknown option: bogus") && e.contains("[tflite]"), "{e}");
    // A library that is not a plugin.
    let e = Runtime::load_with(&tflite, Delegate::External { library: tflite.clone(), options: vec![] })
        .err()
        .expect("not a plugin")
        .to_string();
    assert!(e.contains("tflite_plugin_create_delegate is missing"), "{e}");
    // One any user could replace.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Runtime::load_with(&tflite, Delegate::External { library: plugin.clone(), options: vec![] })
        .err()
        .expect("world-writable")
        .to_string();
    assert!(e.contains("any user may change it"), "{e}");
}

//! Silero VAD on the catalog's ONNX Runtime for the architecture the test runs on: x86-64 in the
//! suite's main run, 64-bit ARM under qemu-user in deploy/test.sh's ARM run (the `aarch64`
//! catalog entry, fetched there with `iris models pull --arch aarch64 onnxruntime` and named by
//! `IRIS_ORT_LIB`). Both must give the speech probabilities x86-64's library gave when this
//! test was written.

use std::path::PathBuf;

use iris_backend::Vad;
use iris_silero::SileroVad;

/// The model store (the store's rule: `$IRIS_HOME`, else `$XDG_DATA_HOME/iris`, else
/// `~/.local/share/iris`).
fn store() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("IRIS_HOME")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("iris")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/iris")))
        .expect("HOME is set")
}

fn file(path: PathBuf, pull: &str) -> PathBuf {
    assert!(path.is_file(), "{} is missing: run `iris models pull {pull}`", path.display());
    path
}

/// Half a second of quiet, a second of a voiced sound (a 140 Hz buzz shaped like a vowel,
/// swelling four times a second as syllables do), then quiet again.
fn voice() -> Vec<f32> {
    let tau = std::f32::consts::TAU;
    (0..32_768)
        .map(|n| n as f32 / 16_000.0)
        .map(|t| {
            if !(0.5..1.5).contains(&t) {
                return 0.001 * (tau * 50.0 * t).sin();
            }
            let swell = 0.5 - 0.5 * (tau * 4.0 * (t - 0.5)).cos();
            let buzz: f32 = (1..=24).map(|k| k as f32 * 140.0).map(|f| (tau * f * t).sin() / (1.0 + ((f - 700.0) / 300.0).powi(2))).sum();
            0.3 * swell * buzz
        })
        .collect()
}

#[test]
fn the_catalogs_runtime_gives_x86_64s_speech_probabilities() {
    let library =
        std::env::var_os("IRIS_ORT_LIB").map(PathBuf::from).unwrap_or_else(|| store().join("models/onnxruntime/libonnxruntime.so.1.31.1"));
    let env = iris_onnx::init(&file(library, "onnxruntime")).expect("ONNX Runtime loads");
    let mut vad = SileroVad::load(env, &file(store().join("models/silero-vad/silero_vad.onnx"), "silero-vad")).expect("Silero loads");
    let probs: Vec<f32> = voice().chunks_exact(512).map(|f| vad.speech_probability(f).expect("it runs")).collect();
    // As x86-64's library gave them: the recurrent state carries each frame's rounding into the
    // next, so a runtime that computes differently drifts away over the 64 frames.
    const X86_64: [f32; 64] = [
        0.01952, 0.01675, 0.00819, 0.00729, 0.00649, 0.00585, 0.00518, 0.00511, 0.00536, 0.00562, 0.00502, 0.00430, 0.00430, 0.00452,
        0.00457, 0.04635, 0.41478, 0.11540, 0.03393, 0.02345, 0.01318, 0.00223, 0.00524, 0.01285, 0.04939, 0.04494, 0.01738, 0.01175,
        0.00388, 0.00145, 0.00164, 0.00940, 0.01714, 0.03948, 0.02714, 0.03215, 0.00661, 0.00324, 0.00241, 0.00752, 0.00664, 0.02475,
        0.01844, 0.00907, 0.00311, 0.00224, 0.00183, 0.00133, 0.00214, 0.00423, 0.00358, 0.00313, 0.00320, 0.00289, 0.00266, 0.00236,
        0.00225, 0.00235, 0.00244, 0.00245, 0.00246, 0.00258, 0.00283, 0.00295,
    ];
    assert_eq!(probs.len(), X86_64.len());
    for (i, (got, want)) in probs.iter().zip(X86_64).enumerate() {
        assert!((got - want).abs() <= 2e-3, "frame {i}: {got} against x86-64's {want}");
    }
}

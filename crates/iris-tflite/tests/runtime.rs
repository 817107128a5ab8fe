//! The catalog's TensorFlow Lite for the architecture the test runs on: x86-64 in the suite's
//! main run, 64-bit ARM under qemu-user in deploy/test.sh's ARM run (the `aarch64` catalog entry,
//! fetched there with `iris models pull --arch aarch64 tflite` and named by `IRIS_TFLITE_LIB`).
//! Both must give openWakeWord's melspectrogram of the same sound as x86-64's library gave it
//! when this test was written.

use std::path::PathBuf;

use iris_tflite::Runtime;

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

/// A second of two tones at openWakeWord's input scale (16-bit samples as floats).
fn tones() -> Vec<f32> {
    let tau = std::f32::consts::TAU;
    (0..16_000).map(|n| n as f32 / 16_000.0).map(|t| 8000.0 * (tau * 440.0 * t).sin() + 3000.0 * (tau * 2500.0 * t).sin()).collect()
}

#[test]
fn the_catalogs_library_computes_the_melspectrogram_as_on_x86_64() {
    let library =
        std::env::var_os("IRIS_TFLITE_LIB").map(PathBuf::from).unwrap_or_else(|| store().join("models/tflite/libtensorflowlite_c.so"));
    let rt = Runtime::load(&file(library, "tflite")).expect("TensorFlow Lite loads");
    assert_eq!(rt.version(), "2.17.1");
    let model = file(store().join("models/openwakeword-tflite/melspectrogram.tflite"), "openwakeword-tflite");
    let mut mel = rt.interpreter(&model, 1).expect("the melspectrogram loads");
    let (shape, values) = mel.run(&[1, 16_000], &tones()).expect("it runs");
    assert_eq!(shape, [1, 1, 97, 32]);
    // Each mel bin summed over the 97 frames, as x86-64's library computed them (the two tones
    // stand out in bins 3 to 8 and 24 to 28; the floor is 1961.4).
    const X86_64: [f64; 32] = [
        3407.112, 4485.779, 5006.480, 7429.354, 9565.427, 9721.388, 8243.288, 5042.413, 4675.225, 3522.171, 3377.705, 2531.306, 2560.412,
        1961.401, 1961.401, 1961.401, 1961.401, 1961.401, 1961.401, 1961.401, 1961.401, 1961.401, 1961.401, 1961.401, 3153.799, 7452.700,
        8684.994, 7400.239, 2838.209, 1961.401, 1961.401, 1961.401,
    ];
    let sums = values.chunks(32).fold([0f64; 32], |mut acc, row| {
        acc.iter_mut().zip(row).for_each(|(a, v)| *a += f64::from(*v));
        acc
    });
    for (bin, (got, want)) in sums.iter().zip(X86_64).enumerate() {
        // Another architecture's kernels round differently, by far less than this.
        assert!((got - want).abs() <= 1e-3 * want, "bin {bin}: {got} against x86-64's {want}");
    }
}

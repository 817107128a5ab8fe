//! Compiles TensorFlow Lite Micro's audio frontend (vendored from the `pymicro-features` 2.0.2
//! source, the copy ESPHome and pymicro-wakeword build) with its fixed-point KISS FFT, and Iris's
//! small C++ shim over it.

fn main() {
    let lib = "vendor/tensorflow/lite/experimental/microfrontend/lib";
    let files = [
        "kiss_fft_int16",
        "fft",
        "fft_util",
        "filterbank",
        "filterbank_util",
        "frontend",
        "frontend_util",
        "log_lut",
        "log_scale",
        "log_scale_util",
        "noise_reduction",
        "noise_reduction_util",
        "pcan_gain_control",
        "pcan_gain_control_util",
        "window",
        "window_util",
    ];
    let mut build = cc::Build::new();
    build.cpp(true).include("vendor").include("vendor/kissfft").define("FIXED_POINT", "16").warnings(false).file("src/shim.cc");
    for f in files {
        build.file(format!("{lib}/{f}.cc"));
    }
    build.compile("microfrontend");
    println!("cargo:rerun-if-changed=vendor");
    println!("cargo:rerun-if-changed=src/shim.cc");
}

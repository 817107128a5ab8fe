//! With the `cuda` feature: the kernels (src/kernels.cu) to PTX with nvcc (CUDA 13.0 from the
//! pip wheels, ../shared/GPU.md), for `CUDA_COMPUTE_CAP` (90: H100/H200) or the oldest
//! architecture CUDA 13 targets; the driver compiles the PTX for the GPU it finds.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    // kernels.cu and the headers it includes.
    for f in ["kernels.cu", "common.cuh", "deq.cuh", "units.cuh", "qdot.cuh", "products.cuh", "attention.cuh"] {
        println!("cargo:rerun-if-changed=src/{f}");
    }
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=IRIS_CUDA_PTX");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("kernels.ptx");
    // IRIS_CUDA_PTX=none: a compile check of the Rust code on a machine without nvcc (the
    // suite's `tests/compiles.rs`); such a build says so when asked to run.
    if std::env::var("IRIS_CUDA_PTX").is_ok_and(|v| v == "none") {
        std::fs::write(&out, "").expect("writing an empty kernels.ptx");
        return;
    }
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "75".into());
    let cap: String = cap.chars().filter(char::is_ascii_digit).collect();
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", "-std=c++17", &format!("-arch=compute_{cap}"), "-o"])
        .arg(&out)
        .arg("src/kernels.cu")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("nvcc failed on src/kernels.cu ({s})"),
        Err(e) => {
            panic!("the `cuda` feature needs nvcc (CUDA 13.0; deploy/gpu-build.sh sets it up from pip wheels): running `{nvcc}`: {e}")
        }
    }
}

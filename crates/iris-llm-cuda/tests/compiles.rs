//! The CUDA engine's Rust code is built only in the CUDA build (deploy/gpu-build.sh, with
//! CUDA 13's pip wheels), which the CPU suite does not make. So that a change cannot break it
//! unseen, it is compile-checked here without any CUDA: cudarc told the version it would find,
//! the kernels' PTX left out (build.rs's IRIS_CUDA_PTX=none), warnings as errors.

use std::path::Path;
use std::process::Command;

#[test]
fn the_cuda_engine_compiles_without_cuda() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["check", "--locked", "-q", "-p", "iris-llm-cuda", "--features", "cuda", "--tests", "--target-dir"])
        .arg(root.join("target/cuda-check"))
        .env("CUDARC_CUDA_VERSION", "13000")
        .env("IRIS_CUDA_PTX", "none")
        .env("RUSTFLAGS", "-D warnings")
        .output()
        .expect("running cargo");
    assert!(out.status.success(), "cargo check --features cuda failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

//! TensorFlow Lite Micro's audio frontend, the features microWakeWord's models take: 40 channels
//! every 10 ms from 30 ms windows of 16 kHz audio (fixed-point FFT, mel filterbank, noise
//! reduction, PCAN gain control, log scale), as pymicro-features and ESPHome compute them.
//!
//! Why C: the frontend is integer arithmetic with its own fixed-point FFT, and the models were
//! trained on its exact output; the upstream source (Apache-2.0, with KISS FFT, BSD-3-Clause) is
//! vendored under `vendor/` and compiled by `build.rs`, behind a four-function shim.

use std::ffi::c_void;

/// Samples per step (10 ms at 16 kHz).
pub const STEP: usize = 160;
/// Channels per feature row.
pub const CHANNELS: usize = 40;
/// What pymicro-features multiplies the frontend's integers by.
const SCALE: f32 = 0.039_062_5;

extern "C" {
    fn iris_frontend_new() -> *mut c_void;
    fn iris_frontend_free(f: *mut c_void);
    fn iris_frontend_step(f: *mut c_void, samples: *const i16, n: usize, read: *mut usize, out: *mut u16) -> usize;
    fn iris_frontend_reset(f: *mut c_void);
}

pub struct MicroFrontend {
    state: *mut c_void,
    /// Samples not yet fed (fewer than a step).
    pending: Vec<i16>,
}

// SAFETY: the state is plain memory owned by this value and used through `&mut self` only.
unsafe impl Send for MicroFrontend {}

impl MicroFrontend {
    /// `None` when the frontend could not allocate its state.
    pub fn new() -> Option<Self> {
        // SAFETY: returns owned state or null.
        let state = unsafe { iris_frontend_new() };
        (!state.is_null()).then(|| Self { state, pending: Vec::with_capacity(STEP) })
    }

    /// Feeds 16-bit samples; returns the feature rows completed, each as pymicro-features gives
    /// them (the frontend's integers times 0.0390625).
    pub fn feed(&mut self, samples: &[i16]) -> Vec<[f32; CHANNELS]> {
        let mut rows = Vec::new();
        self.pending.extend_from_slice(samples);
        let mut at = 0;
        // One step at a time, as the reference hands the frontend 160 samples per call.
        while self.pending.len() - at >= STEP {
            let (mut read, mut out) = (0usize, [0u16; CHANNELS]);
            // SAFETY: `STEP` samples are readable at `at`; `out` holds `CHANNELS` values.
            let n = unsafe { iris_frontend_step(self.state, self.pending[at..].as_ptr(), STEP, &mut read, out.as_mut_ptr()) };
            at += read.clamp(1, STEP);
            if n == CHANNELS {
                rows.push(out.map(|v| f32::from(v) * SCALE));
            }
        }
        self.pending.drain(..at);
        rows
    }

    /// Forgets what was heard (the noise estimate included), as a fresh frontend.
    pub fn reset(&mut self) {
        self.pending.clear();
        // SAFETY: the state is ours and valid.
        unsafe { iris_frontend_reset(self.state) };
    }
}

impl Drop for MicroFrontend {
    fn drop(&mut self) {
        // SAFETY: made by `iris_frontend_new`, freed once.
        unsafe { iris_frontend_free(self.state) };
    }
}

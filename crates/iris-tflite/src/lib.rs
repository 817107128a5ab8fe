//! TensorFlow Lite, the classic C library (`libtensorflowlite_c.so` 2.17), loaded at run time.
//!
//! Why Iris binds the C library itself instead of using a crate: `tflitec` (the design card's
//! choice) cannot build here — its build script clones TensorFlow and fetches headers from the
//! network; `tract-tflite` 0.23 fails on openWakeWord's melspectrogram and panics on most wake
//! heads; `tflite` 0.9 vendors TensorFlow Lite 1.15 (no XNNPACK, missing ops). The library itself
//! ships, built with XNNPACK, for x86_64 and aarch64 in the `pyopen-wakeword` and
//! `pymicro-wakeword` pip wheels (the `tflite` catalog entry), so Iris opens it with `dlopen` and
//! calls the dozen functions of the stable C API it needs: a model, an interpreter, float tensors
//! in and out. The binding stays this small on purpose.

mod delegate;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use delegate::Delegate;
use delegate::{Made, Plugin, XnnpackApi};

/// A model file larger than this is refused before it is read (the wake word models are ≤ 2 MB).
pub const MAX_MODEL_BYTES: u64 = 256 << 20;
const FLOAT32: c_int = 1; // kTfLiteFloat32
const UINT8: c_int = 3; // kTfLiteUInt8
const INT8: c_int = 9; // kTfLiteInt8

/// `TfLiteQuantizationParams`: a quantised value q stands for `scale * (q - zero_point)`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Quantization {
    scale: f32,
    zero_point: i32,
}
const OK: c_int = 0; // kTfLiteOk

#[derive(Debug, thiserror::Error)]
pub enum TfliteError {
    #[error("cannot load TensorFlow Lite from {path}: {message}. Run `iris models pull tflite`")]
    Library { path: PathBuf, message: String },
    #[error("cannot open TensorFlow Lite model {path}: {message}. Check it with `iris models verify`")]
    Model { path: PathBuf, message: String },
    #[error("TensorFlow Lite model {model}: {message}")]
    Run { model: String, message: String },
    #[error("TensorFlow Lite delegate {library}: {message}. Check [tflite] in the settings")]
    Delegate { library: PathBuf, message: String },
}

enum Model {}
enum Options {}
enum Interp {}
enum Tensor {}

type Status = c_int;

/// The C functions Iris calls, resolved once.
struct Api {
    version: unsafe extern "C" fn() -> *const c_char,
    model_create: unsafe extern "C" fn(*const c_void, usize) -> *mut Model,
    model_delete: unsafe extern "C" fn(*mut Model),
    options_create: unsafe extern "C" fn() -> *mut Options,
    options_delete: unsafe extern "C" fn(*mut Options),
    options_threads: unsafe extern "C" fn(*mut Options, i32),
    create: unsafe extern "C" fn(*const Model, *const Options) -> *mut Interp,
    delete: unsafe extern "C" fn(*mut Interp),
    input_count: unsafe extern "C" fn(*const Interp) -> i32,
    input: unsafe extern "C" fn(*const Interp, i32) -> *mut Tensor,
    output_count: unsafe extern "C" fn(*const Interp) -> i32,
    output: unsafe extern "C" fn(*const Interp, i32) -> *const Tensor,
    resize_input: unsafe extern "C" fn(*mut Interp, i32, *const c_int, i32) -> Status,
    allocate: unsafe extern "C" fn(*mut Interp) -> Status,
    invoke: unsafe extern "C" fn(*mut Interp) -> Status,
    tensor_type: unsafe extern "C" fn(*const Tensor) -> c_int,
    num_dims: unsafe extern "C" fn(*const Tensor) -> i32,
    dim: unsafe extern "C" fn(*const Tensor, i32) -> i32,
    byte_size: unsafe extern "C" fn(*const Tensor) -> usize,
    copy_from: unsafe extern "C" fn(*mut Tensor, *const c_void, usize) -> Status,
    copy_to: unsafe extern "C" fn(*const Tensor, *mut c_void, usize) -> Status,
    add_delegate: unsafe extern "C" fn(*mut Options, *mut c_void),
    quantization: unsafe extern "C" fn(*const Tensor) -> Quantization,
    xnnpack: Option<XnnpackApi>,
}

/// The loaded library and the delegate its interpreters use. Shared (`Arc`) by every
/// interpreter made from it, so it (and a delegate plugin) outlives them.
pub struct Runtime {
    api: Api,
    path: PathBuf,
    delegate: Delegate,
    /// The external delegate's plugin, loaded with the runtime so a bad one is said at once.
    plugin: Option<Plugin>,
    _library: libloading::Library,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("path", &self.path).field("version", &self.version()).finish()
    }
}

impl Runtime {
    /// Opens `libtensorflowlite_c.so` at `path` and resolves the functions Iris uses; its
    /// interpreters run on XNNPACK with their own thread counts.
    pub fn load(path: &Path) -> Result<Arc<Self>, TfliteError> {
        Self::load_with(path, Delegate::default())
    }

    /// As [`Runtime::load`], the interpreters on `delegate` (an external one is loaded now).
    pub fn load_with(path: &Path, delegate: Delegate) -> Result<Arc<Self>, TfliteError> {
        let fail = |message: String| TfliteError::Library { path: path.into(), message };
        if !path.is_file() {
            return Err(fail("no such file".into()));
        }
        // SAFETY: loading runs the library's initialisers; this is the TensorFlow Lite C library
        // the catalog pins by sha256 (or one the owner named).
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| fail(e.to_string()))?;
        macro_rules! get {
            ($name:literal) => {
                // SAFETY: the signature is the one of TensorFlow Lite's C API (c_api.h, 2.x).
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| fail(format!("{} is missing ({e}): not a TensorFlow Lite C library", $name)))?
            };
        }
        let api = Api {
            version: get!("TfLiteVersion"),
            model_create: get!("TfLiteModelCreate"),
            model_delete: get!("TfLiteModelDelete"),
            options_create: get!("TfLiteInterpreterOptionsCreate"),
            options_delete: get!("TfLiteInterpreterOptionsDelete"),
            options_threads: get!("TfLiteInterpreterOptionsSetNumThreads"),
            create: get!("TfLiteInterpreterCreate"),
            delete: get!("TfLiteInterpreterDelete"),
            input_count: get!("TfLiteInterpreterGetInputTensorCount"),
            input: get!("TfLiteInterpreterGetInputTensor"),
            output_count: get!("TfLiteInterpreterGetOutputTensorCount"),
            output: get!("TfLiteInterpreterGetOutputTensor"),
            resize_input: get!("TfLiteInterpreterResizeInputTensor"),
            allocate: get!("TfLiteInterpreterAllocateTensors"),
            invoke: get!("TfLiteInterpreterInvoke"),
            tensor_type: get!("TfLiteTensorType"),
            num_dims: get!("TfLiteTensorNumDims"),
            dim: get!("TfLiteTensorDim"),
            byte_size: get!("TfLiteTensorByteSize"),
            copy_from: get!("TfLiteTensorCopyFromBuffer"),
            copy_to: get!("TfLiteTensorCopyToBuffer"),
            add_delegate: get!("TfLiteInterpreterOptionsAddDelegate"),
            quantization: get!("TfLiteTensorQuantizationParams"),
            // SAFETY: the signatures of xnnpack_delegate.h (2.x).
            xnnpack: unsafe {
                match (
                    library.get(b"TfLiteXNNPackDelegateOptionsDefault\0"),
                    library.get(b"TfLiteXNNPackDelegateCreate\0"),
                    library.get(b"TfLiteXNNPackDelegateDelete\0"),
                ) {
                    (Ok(default), Ok(create), Ok(delete)) => Some(XnnpackApi { default: *default, create: *create, delete: *delete }),
                    _ => None,
                }
            },
        };
        let plugin = match &delegate {
            Delegate::External { library, options } => Some(Plugin::load(library, options)?),
            Delegate::Xnnpack { .. } | Delegate::Default => None,
        };
        Ok(Arc::new(Self { api, path: path.into(), delegate, plugin, _library: library }))
    }

    /// The library's version, e.g. "2.17.1".
    pub fn version(&self) -> String {
        // SAFETY: returns a static NUL-terminated string.
        let v = unsafe { (self.api.version)() };
        if v.is_null() {
            return "unknown".into();
        }
        unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The delegate, as the status page and `iris doctor` say it: "XNNPACK (1 thread)",
    /// "external delegate /usr/lib/libedgetpu.so.1".
    pub fn delegate(&self, threads: usize) -> String {
        match (&self.delegate, &self.plugin) {
            (_, Some(p)) => format!("external delegate {}", p.path().display()),
            (Delegate::Default, None) => format!("its default delegates ({} thread{})", threads.max(1), if threads > 1 { "s" } else { "" }),
            (Delegate::Xnnpack { threads: t }, None) => {
                let n = if *t == 0 { threads.max(1) } else { *t };
                format!("XNNPACK ({n} thread{})", if n == 1 { "" } else { "s" })
            }
            (Delegate::External { library, .. }, None) => format!("external delegate {}", library.display()),
        }
    }

    /// The delegate for one interpreter of `threads` threads (none: the library's own).
    fn make_delegate(&self, threads: usize, fail: impl Fn(String) -> TfliteError) -> Result<Option<Made>, TfliteError> {
        match (&self.delegate, &self.plugin) {
            (_, Some(plugin)) => plugin.make().map(Some),
            (Delegate::Default, None) => Ok(None),
            (Delegate::Xnnpack { threads: t }, None) => {
                let api = self.api.xnnpack.as_ref().ok_or_else(|| {
                    fail(format!(
                        "{} has no XNNPACK delegate; use a TensorFlow Lite built with it (`iris models pull tflite`) or set [tflite] delegate = \"external\"",
                        self.path.display()
                    ))
                })?;
                delegate::xnnpack(api, if *t == 0 { threads } else { *t }).map(Some).map_err(fail)
            }
            (Delegate::External { library, .. }, None) => Err(fail(format!("the delegate {} is not loaded", library.display()))),
        }
    }

    /// Reads a `.tflite` model (bounded by [`MAX_MODEL_BYTES`]) and makes an interpreter for it
    /// with `threads` threads (XNNPACK, applied by the library to float models, uses them too).
    pub fn interpreter(self: &Arc<Self>, model: &Path, threads: usize) -> Result<Interpreter, TfliteError> {
        let fail = |message: String| TfliteError::Model { path: model.into(), message };
        let size = std::fs::metadata(model).map_err(|e| fail(e.to_string()))?.len();
        if size > MAX_MODEL_BYTES {
            return Err(fail(format!("{size} bytes, more than the {MAX_MODEL_BYTES} a model may have")));
        }
        let bytes = std::fs::read(model).map_err(|e| fail(e.to_string()))?;
        let api = &self.api;
        // SAFETY: TfLiteModelCreate verifies the flatbuffer and keeps a pointer to `bytes`, which
        // the Interpreter owns and frees after the model.
        let handle = unsafe { (api.model_create)(bytes.as_ptr().cast(), bytes.len()) };
        if handle.is_null() {
            return Err(fail("not a valid TensorFlow Lite flatbuffer".into()));
        }
        let options = unsafe { (api.options_create)() };
        if options.is_null() {
            unsafe { (api.model_delete)(handle) };
            return Err(fail("out of memory making interpreter options".into()));
        }
        unsafe { (api.options_threads)(options, threads.clamp(1, 64) as i32) };
        let delegate = match self.make_delegate(threads, fail) {
            Ok(d) => d,
            Err(e) => {
                unsafe { (api.options_delete)(options) };
                unsafe { (api.model_delete)(handle) };
                return Err(e);
            }
        };
        if let Some(d) = &delegate {
            // SAFETY: the delegate outlives the interpreter (freed after it, in `Drop`).
            unsafe { (api.add_delegate)(options, d.as_ptr()) };
        }
        let interp = unsafe { (api.create)(handle, options) };
        unsafe { (api.options_delete)(options) };
        if interp.is_null() {
            drop(delegate);
            unsafe { (api.model_delete)(handle) };
            return Err(fail(match &self.plugin {
                Some(p) => format!("the interpreter refused it on {} (a model not made for this NPU?)", p.path().display()),
                None => "the interpreter refused it (an operator this library lacks?)".into(),
            }));
        }
        let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Tensors are allocated at the first run, for its shape: a dynamic input (the
        // melspectrogram's [-1, -1]) cannot be allocated at the placeholder size.
        let me = Interpreter { runtime: self.clone(), model: handle, interp, delegate, _bytes: bytes, name, shape: Vec::new() };
        let (inputs, outputs) = unsafe { ((api.input_count)(me.interp), (api.output_count)(me.interp)) };
        if inputs < 1 || outputs < 1 {
            return Err(fail(format!("{inputs} input(s) and {outputs} output(s); Iris runs models with one of each")));
        }
        Ok(me)
    }
}

/// One model's interpreter: float tensors in, float tensors out, on the calling thread.
pub struct Interpreter {
    runtime: Arc<Runtime>,
    model: *mut Model,
    interp: *mut Interp,
    /// Freed after the interpreter, before the model.
    delegate: Option<Made>,
    /// The flatbuffer TensorFlow Lite reads from; freed after the model.
    _bytes: Vec<u8>,
    name: String,
    /// The first input's shape as last allocated; empty before the first run.
    shape: Vec<usize>,
}

// SAFETY: a TensorFlow Lite interpreter may move between threads; it is used by one at a time
// (`&mut self`), and nothing else holds its pointers.
unsafe impl Send for Interpreter {}

impl Interpreter {
    fn check(&self, status: Status, doing: &str) -> Result<(), TfliteError> {
        if status == OK {
            Ok(())
        } else {
            Err(TfliteError::Run { model: self.name.clone(), message: format!("{doing} failed (status {status})") })
        }
    }

    /// The first input's shape; a dynamic dimension reads as 1 until the first run.
    pub fn input_shape(&self) -> Vec<usize> {
        let api = &self.runtime.api;
        // SAFETY: the interpreter has at least one input (checked when made).
        let t = unsafe { (api.input)(self.interp, 0) };
        let n = unsafe { (api.num_dims)(t) };
        (0..n.max(0)).map(|i| unsafe { (api.dim)(t, i) }.max(0) as usize).collect()
    }

    /// Runs the model on `data` laid out as `shape` (the first input; resized when it differs)
    /// and returns the first output, flattened, with its shape.
    pub fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<(Vec<usize>, Vec<f32>), TfliteError> {
        let api = &self.runtime.api;
        if shape.iter().product::<usize>() != data.len() {
            return Err(self.error(format!("{} values do not fill shape {shape:?}", data.len())));
        }
        if shape != self.shape.as_slice() {
            let dims: Vec<c_int> = shape.iter().map(|&d| c_int::try_from(d).unwrap_or(c_int::MAX)).collect();
            // SAFETY: `dims` lives across the call; the library copies it.
            self.check(unsafe { (api.resize_input)(self.interp, 0, dims.as_ptr(), dims.len() as i32) }, "resizing the input")?;
            self.check(unsafe { (api.allocate)(self.interp) }, "allocating tensors")?;
            self.shape = shape.to_vec();
        }
        // Tensor pointers are looked up per run: allocation may move them.
        let input = unsafe { (api.input)(self.interp, 0) };
        if unsafe { (api.tensor_type)(input) } != FLOAT32 {
            return Err(self.error("the input is not float32".into()));
        }
        let bytes = std::mem::size_of_val(data);
        if unsafe { (api.byte_size)(input) } != bytes {
            return Err(self.error(format!("the input takes {} bytes, not {bytes}", unsafe { (api.byte_size)(input) })));
        }
        // SAFETY: sizes checked above; the library copies exactly `bytes`.
        self.check(unsafe { (api.copy_from)(input, data.as_ptr().cast(), bytes) }, "copying the input")?;
        self.check(unsafe { (api.invoke)(self.interp) }, "running")?;
        let output = unsafe { (api.output)(self.interp, 0) };
        if unsafe { (api.tensor_type)(output) } != FLOAT32 {
            return Err(self.error("the output is not float32".into()));
        }
        let n = unsafe { (api.num_dims)(output) };
        let out_shape: Vec<usize> = (0..n.max(0)).map(|i| unsafe { (api.dim)(output, i) }.max(0) as usize).collect();
        let size = unsafe { (api.byte_size)(output) };
        let mut values = vec![0f32; size / 4];
        // SAFETY: `values` holds `size` bytes (rounded down to whole floats, as copied).
        self.check(unsafe { (api.copy_to)(output, values.as_mut_ptr().cast(), values.len() * 4) }, "copying the output")?;
        Ok((out_shape, values))
    }

    /// Runs a quantised model (8-bit input and output, its declared shape) on float `data`,
    /// quantised as pymicro-wakeword does (x / scale + zero point, rounded half to even, in
    /// f64), and returns the first output dequantised (in f32, as numpy does there).
    pub fn run_quantized(&mut self, data: &[f32]) -> Result<Vec<f32>, TfliteError> {
        let api = &self.runtime.api;
        if self.shape.is_empty() {
            self.check(unsafe { (api.allocate)(self.interp) }, "allocating tensors")?;
            self.shape = self.input_shape();
        }
        let input = unsafe { (api.input)(self.interp, 0) };
        let (kind, q) = unsafe { ((api.tensor_type)(input), (api.quantization)(input)) };
        if !matches!(kind, INT8 | UINT8) || !(q.scale > 0.0) {
            return Err(self.error("the input is not quantised to 8 bits".into()));
        }
        let size = unsafe { (api.byte_size)(input) };
        if size != data.len() {
            return Err(self.error(format!("the input takes {size} values, not {}", data.len())));
        }
        let bytes: Vec<u8> = data
            .iter()
            .map(|x| {
                // Out of range wraps, as numpy's cast does (the models' features stay inside).
                let v = (f64::from(*x) / f64::from(q.scale) + f64::from(q.zero_point)).round_ties_even() as i64;
                if kind == INT8 {
                    v as i8 as u8
                } else {
                    v as u8
                }
            })
            .collect();
        // SAFETY: `bytes` holds exactly the tensor's size.
        self.check(unsafe { (api.copy_from)(input, bytes.as_ptr().cast(), bytes.len()) }, "copying the input")?;
        self.check(unsafe { (api.invoke)(self.interp) }, "running")?;
        let output = unsafe { (api.output)(self.interp, 0) };
        let (kind, q) = unsafe { ((api.tensor_type)(output), (api.quantization)(output)) };
        if !matches!(kind, INT8 | UINT8) {
            return Err(self.error("the output is not quantised to 8 bits".into()));
        }
        let mut out = vec![0u8; unsafe { (api.byte_size)(output) }];
        // SAFETY: `out` holds the tensor's size.
        self.check(unsafe { (api.copy_to)(output, out.as_mut_ptr().cast(), out.len()) }, "copying the output")?;
        let value = |b: u8| if kind == INT8 { f32::from(b as i8) } else { f32::from(b) };
        Ok(out.into_iter().map(|b| (value(b) - q.zero_point as f32) * q.scale).collect())
    }

    fn error(&self, message: String) -> TfliteError {
        TfliteError::Run { model: self.name.clone(), message }
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        // SAFETY: all three were made for this interpreter and are freed once, interpreter first.
        unsafe {
            (self.runtime.api.delete)(self.interp);
            drop(self.delegate.take());
            (self.runtime.api.model_delete)(self.model);
        }
    }
}

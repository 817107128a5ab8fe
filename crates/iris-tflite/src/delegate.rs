//! Delegates: TensorFlow Lite's XNNPACK (the CPU delegate, with its own thread count) and
//! external delegates, the plugins boards' NPUs ship (Coral's Edge TPU, NXP's VX delegate, a
//! vendor's own). A plugin exports `tflite_plugin_create_delegate(keys, values, n, report)` and
//! `tflite_plugin_destroy_delegate`, TensorFlow Lite's external-delegate ABI, and is given the
//! options its maker documents.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::TfliteError;

/// How the interpreters of a [`crate::Runtime`] run their models.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Delegate {
    /// TensorFlow Lite's own choice: its built-in XNNPACK applied where it takes the model, as
    /// the reference Python packages run them (an explicit XNNPACK rounds int8 models
    /// differently: microWakeWord's scores moved by two quantisation steps).
    #[default]
    Default,
    /// XNNPACK with `threads` threads (0: the interpreter's own count).
    Xnnpack { threads: usize },
    /// A delegate plugin and its options.
    External { library: PathBuf, options: Vec<(String, String)> },
}

/// `TfLiteXNNPackDelegateOptions`, of which Iris sets the first field (`num_threads`) and leaves
/// the library's defaults in the rest: room for the whole struct of any 2.x version (48 bytes
/// in 2.17), returned through a pointer as a struct this size always is.
#[repr(C, align(8))]
pub(crate) struct XnnpackOptions {
    num_threads: i32,
    rest: [u8; 252],
}

pub(crate) enum Raw {}

pub(crate) type XnnpackDefault = unsafe extern "C" fn() -> XnnpackOptions;
pub(crate) type XnnpackCreate = unsafe extern "C" fn(*const XnnpackOptions) -> *mut Raw;
pub(crate) type XnnpackDelete = unsafe extern "C" fn(*mut Raw);
type ReportError = unsafe extern "C" fn(*const c_char);
type PluginCreate = unsafe extern "C" fn(*const *const c_char, *const *const c_char, usize, ReportError) -> *mut Raw;
type PluginDestroy = unsafe extern "C" fn(*mut Raw);

/// XNNPACK's three functions, where the library has them (a board's own build may not).
pub(crate) struct XnnpackApi {
    pub(crate) default: XnnpackDefault,
    pub(crate) create: XnnpackCreate,
    pub(crate) delete: XnnpackDelete,
}

/// A delegate plugin, loaded once per runtime.
pub(crate) struct Plugin {
    path: PathBuf,
    create: PluginCreate,
    destroy: PluginDestroy,
    options: Vec<(CString, CString)>,
    _library: libloading::Library,
}

thread_local! {
    /// What a plugin reported while making its delegate on this thread.
    static REPORTED: RefCell<String> = const { RefCell::new(String::new()) };
}

unsafe extern "C" fn report(message: *const c_char) {
    if !message.is_null() {
        // SAFETY: the plugin passes a NUL-terminated string, valid during the call.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        REPORTED.with(|r| {
            let mut r = r.borrow_mut();
            if r.len() < 4096 {
                r.push_str(text.trim());
                r.push(' ');
            }
        });
    }
}

impl Plugin {
    /// Loads the plugin at `path`: an absolute path to a regular file that no other user may
    /// write to (it runs inside Iris).
    pub(crate) fn load(path: &Path, options: &[(String, String)]) -> Result<Self, TfliteError> {
        let fail = |message: String| TfliteError::Delegate { library: path.into(), message };
        let meta =
            std::fs::metadata(path).map_err(|e| fail(format!("{e}; install the board's delegate or fix [tflite] external_library")))?;
        if !path.is_absolute() || !meta.is_file() {
            return Err(fail("not a file named by an absolute path".into()));
        }
        let writable_by_others = |m: &std::fs::Metadata| m.permissions().mode() & 0o002 != 0;
        let dir_open = path
            .parent()
            .and_then(|d| std::fs::metadata(d).ok())
            .is_some_and(|m| writable_by_others(&m) && m.permissions().mode() & 0o1000 == 0);
        if writable_by_others(&meta) || dir_open {
            return Err(fail("any user may change it (or its folder); Iris loads only a delegate that its owner controls".into()));
        }
        let options = options
            .iter()
            .map(|(k, v)| Ok((CString::new(k.as_str())?, CString::new(v.as_str())?)))
            .collect::<Result<Vec<_>, std::ffi::NulError>>()
            .map_err(|_| fail("an option holds a NUL byte".into()))?;
        // SAFETY: loading runs the plugin's initialisers: a library the owner named.
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| fail(e.to_string()))?;
        let missing = |name: &str, e: libloading::Error| fail(format!("{name} is missing ({e}): not a TensorFlow Lite delegate plugin"));
        // SAFETY: the signatures of TensorFlow Lite's external-delegate ABI.
        let create: PluginCreate =
            *unsafe { library.get(b"tflite_plugin_create_delegate\0") }.map_err(|e| missing("tflite_plugin_create_delegate", e))?;
        let destroy: PluginDestroy =
            *unsafe { library.get(b"tflite_plugin_destroy_delegate\0") }.map_err(|e| missing("tflite_plugin_destroy_delegate", e))?;
        Ok(Self { path: path.into(), create, destroy, options, _library: library })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A delegate for one interpreter, or what the plugin said when it would not make one.
    pub(crate) fn make(&self) -> Result<Made, TfliteError> {
        let keys: Vec<*const c_char> = self.options.iter().map(|(k, _)| k.as_ptr()).collect();
        let values: Vec<*const c_char> = self.options.iter().map(|(_, v)| v.as_ptr()).collect();
        REPORTED.with(|r| r.borrow_mut().clear());
        // SAFETY: both arrays hold `options.len()` NUL-terminated strings that outlive the call.
        let raw = unsafe { (self.create)(keys.as_ptr(), values.as_ptr(), keys.len(), report) };
        if raw.is_null() {
            let said = REPORTED.with(|r| std::mem::take(&mut *r.borrow_mut()));
            let said = if said.trim().is_empty() { "it gave no reason".to_owned() } else { said.trim().to_owned() };
            return Err(TfliteError::Delegate {
                library: self.path.clone(),
                message: format!("made no delegate with the options given: {said}"),
            });
        }
        Ok(Made { raw, free: Free::Plugin(self.destroy) })
    }
}

pub(crate) enum Free {
    Plugin(PluginDestroy),
    Xnnpack(XnnpackDelete),
}

/// A delegate made for one interpreter, freed after it. The interpreter holds its runtime, and
/// so the library that made the delegate, until then.
pub(crate) struct Made {
    raw: *mut Raw,
    free: Free,
}

impl Made {
    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.raw.cast()
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        // SAFETY: made by the matching create function, freed once, after its interpreter.
        unsafe {
            match self.free {
                Free::Plugin(f) => f(self.raw),
                Free::Xnnpack(f) => f(self.raw),
            }
        }
    }
}

/// XNNPACK with `threads` threads.
pub(crate) fn xnnpack(api: &XnnpackApi, threads: usize) -> Result<Made, String> {
    // SAFETY: the library fills in its defaults; Iris sets the thread count, the first field.
    let mut options = unsafe { (api.default)() };
    options.num_threads = threads.clamp(1, 64) as i32;
    let raw = unsafe { (api.create)(&options) };
    if raw.is_null() {
        return Err("XNNPACK made no delegate".into());
    }
    Ok(Made { raw, free: Free::Xnnpack(api.delete) })
}

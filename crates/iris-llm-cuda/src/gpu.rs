//! The little of CUDA this engine uses, on cudarc's driver and cuBLAS bindings at their raw
//! level: one context and stream, buffers that free themselves, the kernels' module, launches,
//! and one cuBLAS product. The raw level because a decode step is a few hundred launches of
//! tiny kernels: cudarc's safe launch builder records events per argument, which is time the
//! GPU would spend waiting.

use std::ffi::{c_void, CString};
use std::sync::Arc;

use cudarc::cublas::{result as blas, sys as blas_sys};
use cudarc::driver::{result, sys, CudaContext};

use crate::CudaLlmError;

/// The kernels, as PTX (build.rs); the driver compiles them for the GPU it finds.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels.ptx"));

pub fn err(what: &str) -> impl Fn(result::DriverError) -> CudaLlmError + '_ {
    move |e| CudaLlmError::Cuda(format!("{what}: {e}"))
}

/// Memory on the GPU, freed on drop.
pub struct Buffer {
    pub ptr: sys::CUdeviceptr,
    pub bytes: usize,
}

impl Buffer {
    pub fn zeroed(bytes: usize) -> Result<Self, CudaLlmError> {
        // SAFETY: a fresh allocation of `bytes` (at least 1), filled before use.
        unsafe {
            let ptr = result::malloc_sync(bytes.max(1)).map_err(err("allocating GPU memory"))?;
            let buf = Self { ptr, bytes };
            result::memset_d8_sync(ptr, 0, bytes.max(1)).map_err(err("clearing GPU memory"))?;
            Ok(buf)
        }
    }

    pub fn from_bytes(data: &[u8]) -> Result<Self, CudaLlmError> {
        let buf = Self::zeroed(data.len())?;
        // SAFETY: the buffer holds `data.len()` bytes.
        unsafe { result::memcpy_htod_sync(buf.ptr, data) }.map_err(err("copying to the GPU"))?;
        Ok(buf)
    }

    pub fn from_f32(data: &[f32]) -> Result<Self, CudaLlmError> {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self::from_bytes(&bytes)
    }

    /// The address `offset` bytes in.
    pub fn at(&self, offset: usize) -> sys::CUdeviceptr {
        debug_assert!(offset <= self.bytes);
        self.ptr + offset as u64
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated by `malloc_sync` and not freed before; nothing uses it after drop.
        unsafe {
            let _ = result::free_sync(self.ptr);
        }
    }
}

/// Page-locked host memory of f32s, which the GPU copies into at full speed (a pageable copy of
/// a 150K-word vocabulary's logits took as long as a tenth of a decode step).
pub struct Pinned {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: plain memory owned by this value.
unsafe impl Send for Pinned {}

impl Pinned {
    pub fn new(len: usize) -> Result<Self, CudaLlmError> {
        // SAFETY: a fresh allocation of len f32s, written by the GPU before it is read.
        let ptr = unsafe { result::malloc_host(len.max(1) * 4, 0) }.map_err(err("allocating page-locked memory"))? as *mut f32;
        Ok(Self { ptr, len })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: allocated by `malloc_host`, freed once.
        unsafe {
            let _ = result::free_host(self.ptr as *mut c_void);
        }
    }
}

/// The context, a stream, the kernels and a cuBLAS handle.
pub struct Gpu {
    /// IRIS_CUDA_PROFILE=1: each launch timed alone (synchronised), by kernel, printed to
    /// stderr when the model is dropped. For finding the slow kernel, not for measuring speed.
    profile: Option<std::cell::RefCell<Vec<(String, f64, u64)>>>,
    ctx: Arc<CudaContext>,
    pub stream: sys::CUstream,
    module: sys::CUmodule,
    blas: blas_sys::cublasHandle_t,
}

// SAFETY: the handles are used by one thread at a time (`Model` is behind `&mut`), after
// binding the context to that thread.
unsafe impl Send for Gpu {}

impl Gpu {
    pub fn new(ordinal: usize) -> Result<Self, CudaLlmError> {
        let ctx = CudaContext::new(ordinal).map_err(err("opening the GPU"))?;
        let stream = result::stream::create(result::stream::StreamKind::NonBlocking).map_err(err("creating a stream"))?;
        if PTX.is_empty() {
            return Err(CudaLlmError::Cuda(
                "this build has no kernels (built with IRIS_CUDA_PTX=none, a compile check); build it with deploy/gpu-build.sh".into(),
            ));
        }
        let ptx = CString::new(PTX).map_err(|_| CudaLlmError::Cuda("the kernels' PTX holds a NUL".into()))?;
        // SAFETY: a NUL-terminated PTX image.
        let module = unsafe { result::module::load_data(ptx.as_ptr() as *const c_void) }.map_err(err("loading the kernels"))?;
        let blas = blas::create_handle().map_err(|e| CudaLlmError::Cuda(format!("starting cuBLAS: {e:?}")))?;
        // SAFETY: both handles are valid; the streams are the same object for the driver.
        unsafe { blas::set_stream(blas, stream as blas_sys::cudaStream_t) }
            .map_err(|e| CudaLlmError::Cuda(format!("cuBLAS stream: {e:?}")))?;
        // alpha and beta live on the GPU: alpha is a scale a kernel computes (`to_half`).
        // SAFETY: a valid handle.
        unsafe { blas_sys::cublasSetPointerMode_v2(blas, blas_sys::cublasPointerMode_t::CUBLAS_POINTER_MODE_DEVICE) }
            .result()
            .map_err(|e| CudaLlmError::Cuda(format!("cuBLAS pointer mode: {e:?}")))?;
        let profile = std::env::var("IRIS_CUDA_PROFILE").is_ok_and(|v| v == "1").then(Default::default);
        Ok(Self { profile, ctx, stream, module, blas })
    }

    /// Makes the context current on the calling thread (the engine may be driven from any).
    pub fn bind(&self) -> Result<(), CudaLlmError> {
        self.ctx.bind_to_thread().map_err(err("binding the GPU to this thread"))
    }

    pub fn name(&self) -> String {
        self.ctx.name().unwrap_or_else(|_| "an NVIDIA GPU".into())
    }

    pub fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }

    /// Free and total bytes of GPU memory.
    pub fn memory(&self) -> Result<(usize, usize), CudaLlmError> {
        self.ctx.mem_get_info().map_err(err("reading the GPU's memory"))
    }

    /// A kernel of the module, looked up once at load.
    pub fn function(&self, name: &str) -> Result<Kernel, CudaLlmError> {
        let c = CString::new(name).map_err(|_| CudaLlmError::Cuda(format!("kernel name {name}")))?;
        // SAFETY: the module is loaded; the name is NUL-terminated.
        let f = unsafe { result::module::get_function(self.module, c) }.map_err(err("finding a kernel"))?;
        if let Some(p) = &self.profile {
            p.borrow_mut().push((name.to_owned(), 0.0, 0));
        }
        Ok(Kernel(f, self.profile.as_ref().map_or(0, |p| p.borrow().len() - 1)))
    }

    /// Lets `name` use up to `bytes` of dynamic shared memory (above 48 KiB needs asking).
    pub fn allow_shared(&self, f: Kernel, bytes: usize) -> Result<(), CudaLlmError> {
        // SAFETY: `f` is a loaded kernel.
        unsafe {
            result::function::set_function_attribute(
                f.0,
                sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
        }
        .map_err(err("allowing shared memory"))
    }

    /// Launches `f`; `args` point at each argument's value, in the kernel's order.
    ///
    /// # Safety
    /// The arguments must match the kernel's parameters in type and order, and every address
    /// among them must be valid for what the kernel does with it.
    pub unsafe fn launch(
        &self,
        f: Kernel,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        shared: u32,
        args: &mut [*mut c_void],
    ) -> Result<(), CudaLlmError> {
        let Some(profile) = &self.profile else {
            return result::launch_kernel(f.0, grid, block, shared, self.stream, args).map_err(err("launching a kernel"));
        };
        let capturing = result::stream::is_capturing(self.stream).map_err(err("asking about a capture"))?
            != sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE;
        if capturing {
            return result::launch_kernel(f.0, grid, block, shared, self.stream, args).map_err(err("launching a kernel"));
        }
        self.sync()?;
        let t0 = std::time::Instant::now();
        result::launch_kernel(f.0, grid, block, shared, self.stream, args).map_err(err("launching a kernel"))?;
        self.sync()?;
        let mut p = profile.borrow_mut();
        p[f.1].1 += t0.elapsed().as_secs_f64();
        p[f.1].2 += 1;
        Ok(())
    }

    /// `c[t][r] = alpha · Σ_k a[r][k] · b[t][k] + beta · c[t][r]`: `a` rows × k row-major f16,
    /// `b` n rows of k f16 with `ldb` between them, `c` row-major f32 with `ldc` between its
    /// rows; `alpha` and `beta` are addresses of f32s on the GPU.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        a: u64,
        b: u64,
        c: u64,
        rows: usize,
        n: usize,
        k: usize,
        ldb: usize,
        ldc: usize,
        alpha: u64,
        beta: u64,
    ) -> Result<(), CudaLlmError> {
        // Column-major, as cuBLAS sees it: c (rows × n) = aᵀ (a is k × rows) times b (k × n).
        // SAFETY: the caller's buffers hold these shapes; the handle is on our stream.
        unsafe {
            blas::gemm_ex(
                self.blas,
                blas_sys::cublasOperation_t::CUBLAS_OP_T,
                blas_sys::cublasOperation_t::CUBLAS_OP_N,
                rows as i32,
                n as i32,
                k as i32,
                alpha as *const c_void,
                a as *const c_void,
                blas_sys::cudaDataType::CUDA_R_16F,
                k as i32,
                b as *const c_void,
                blas_sys::cudaDataType::CUDA_R_16F,
                ldb as i32,
                beta as *const c_void,
                c as *mut c_void,
                blas_sys::cudaDataType::CUDA_R_32F,
                ldc as i32,
                blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
            )
        }
        .map_err(|e| CudaLlmError::Cuda(format!("cuBLAS product: {e:?}")))
    }

    pub fn sync(&self) -> Result<(), CudaLlmError> {
        // SAFETY: our stream.
        unsafe { result::stream::synchronize(self.stream) }.map_err(err("running the kernels"))
    }

    /// The `staging.len` floats at `src`, once the stream has run, through page-locked memory.
    pub fn read_f32(&self, src: u64, staging: &mut Pinned) -> Result<Vec<f32>, CudaLlmError> {
        // SAFETY: `staging` holds len floats and `src` at least as many (the caller's buffers);
        // the slice is read only after the stream has finished the copy.
        unsafe {
            let host = std::slice::from_raw_parts_mut(staging.ptr, staging.len);
            result::memcpy_dtoh_async(host, src, self.stream).map_err(err("copying from the GPU"))?;
            self.sync()?;
            Ok(host.to_vec())
        }
    }

    /// Copies `data` to `dst` in stream order.
    pub fn write<T>(&self, dst: u64, data: &[T]) -> Result<(), CudaLlmError> {
        // SAFETY: `dst` holds at least `data`'s bytes; `data` outlives the copy, which the
        // stream runs before anything queued after it (and the caller syncs before reuse).
        unsafe { result::memcpy_htod_async(dst, data, self.stream) }.map_err(err("copying to the GPU"))
    }
}

/// A captured sequence of launches, replayed as one (a CUDA graph): a decode step's few hundred
/// launches then cost the CPU one call, and the GPU no gaps between them.
pub struct Graph {
    graph: sys::CUgraph,
    exec: sys::CUgraphExec,
}

// SAFETY: used by one thread at a time, with its context bound (as `Gpu`).
unsafe impl Send for Graph {}

impl Gpu {
    /// Records what `launches` queues on the stream, without running it.
    pub fn capture(&self, launches: impl FnOnce() -> Result<(), CudaLlmError>) -> Result<Graph, CudaLlmError> {
        // SAFETY: our stream; the capture is ended whatever `launches` does.
        unsafe {
            result::stream::begin_capture(self.stream, sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(err("starting a graph capture"))?;
            let queued = launches();
            let graph = result::stream::end_capture(self.stream).map_err(err("ending a graph capture"));
            queued?;
            let graph = graph?;
            match result::graph::instantiate(graph, sys::CUgraphInstantiate_flags(0)) {
                Ok(exec) => Ok(Graph { graph, exec }),
                Err(e) => {
                    let _ = result::graph::destroy(graph);
                    Err(err("instantiating a graph")(e))
                }
            }
        }
    }

    /// Queues the graph's launches on the stream.
    pub fn replay(&self, g: &Graph) -> Result<(), CudaLlmError> {
        // SAFETY: an instantiated graph of this context; its buffers live as long as the model.
        unsafe { result::graph::launch(g.exec, self.stream) }.map_err(err("replaying a graph"))
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: made in `capture`, destroyed once.
        unsafe {
            let _ = result::graph::exec_destroy(self.exec);
            let _ = result::graph::destroy(self.graph);
        }
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        if let Some(p) = &self.profile {
            let mut rows: Vec<_> = p.borrow().iter().filter(|r| r.2 > 0).cloned().collect();
            rows.sort_by(|a, b| b.1.total_cmp(&a.1));
            let total: f64 = rows.iter().map(|r| r.1).sum();
            eprintln!("iris-cuda profile (each launch synchronised): {:.1} ms in all", total * 1e3);
            for (name, secs, count) in rows {
                eprintln!("  {name:<16} {:>9.2} ms {:>7} launches {:>8.1} us each", secs * 1e3, count, secs * 1e6 / count as f64);
            }
        }
        // SAFETY: handles made in `new`, released once.
        unsafe {
            let _ = self.ctx.bind_to_thread();
            let _ = blas::destroy_handle(self.blas);
            let _ = result::module::unload(self.module);
            let _ = result::stream::destroy(self.stream);
        }
    }
}

/// A kernel of the engine's module (and its index in the profile).
#[derive(Clone, Copy)]
pub struct Kernel(sys::CUfunction, usize);

// SAFETY: a function handle of a module that lives as long as the `Gpu` holding it.
unsafe impl Send for Kernel {}

/// A kernel argument: the address of a value, as `cuLaunchKernel` takes them.
pub fn arg<T>(v: &T) -> *mut c_void {
    v as *const T as *mut c_void
}

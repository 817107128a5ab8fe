// The kernels of Iris's CUDA engine for GGUF language models (compiled to PTX by build.rs and
// loaded by the driver at start-up). Weights stay quantised in GPU memory, in GGUF's blocks
// padded to 4-byte multiples on the host (`repack.rs`), so every field is read with aligned
// 32-bit loads. One matrix-vector kernel per weight type (a warp per row, a lane per 32 values)
// serves decoding and short prompts; long prompts are dequantised to f16 and go to cuBLAS.
// This file holds the per-row operations (norms, activation, rotary positions and the KV cache
// write); the headers, in this order: what every kernel shares, the blocks' dequantisation, the
// f32 and int8 product units, the products per type, and attention.
#include <cuda_fp16.h>
#include <stdint.h>

#include "common.cuh"
#include "deq.cuh"
#include "units.cuh"
#include "qdot.cuh"
#include "products.cuh"

// out[t] = x[t] / rms(x[t]) * w, a block per row (f32 sums, as ggml's CUDA backend).
extern "C" __global__ void rmsnorm(const float* x, const float* w, float* out, int dim, float eps) {
    const float* xr = x + (size_t)blockIdx.x * dim;
    float* o = out + (size_t)blockIdx.x * dim;
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i] * xr[i];
    s = block_sum(s);
    float scale = rsqrtf(s / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = xr[i] * scale * w[i];
}

// x[t] += rmsnorm(p[t]) * w: Gemma 3's norms after attention and the feed-forward block.
extern "C" __global__ void rmsnorm_add(float* x, const float* p, const float* w, int dim, float eps) {
    const float* pr = p + (size_t)blockIdx.x * dim;
    float* xr = x + (size_t)blockIdx.x * dim;
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += pr[i] * pr[i];
    s = block_sum(s);
    float scale = rsqrtf(s / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) xr[i] += pr[i] * scale * w[i];
}

// A normalised row written as f32 and as int8 with a scale per 32 (`quantize_q8`'s rounding):
// a decode step's norm and the quantisation of its products' input in one launch, not two. A
// warp's lanes hold 32 consecutive values (dim is a multiple of 32), so a warp is a block.
__device__ __forceinline__ void norm_out_q8(const float* xr, const float* w, float* o, int dim, float scale, int8_t* q,
                                            float* d) {
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = xr[i] * scale * w[i];
        o[i] = v;
        float amax = warp_max(fabsf(v));
        float qs = amax / 127.f;
        q[i] = amax == 0.f ? 0 : (int8_t)roundf(v / qs);
        if ((threadIdx.x & 31) == 0) d[i >> 5] = qs;
    }
}

// rmsnorm of one row, with its int8 form.
extern "C" __global__ void rmsnorm_q8(const float* x, const float* w, float* out, int dim, float eps, int8_t* q, float* d) {
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += x[i] * x[i];
    s = block_sum(s);
    norm_out_q8(x, w, out, dim, rsqrtf(s / dim + eps), q, d);
}

// Gemma 3 between blocks, one row: x += rmsnorm(p) * wp (the norm after attention or the
// feed-forward block), then out = rmsnorm(x) * w with its int8 form (the norm before the next):
// `rmsnorm_add`, `rmsnorm` and `quantize_q8` in one launch, the same arithmetic.
extern "C" __global__ void rmsnorm_add_q8(float* x, const float* p, const float* wp, const float* w, float* out, int dim,
                                          float eps, int8_t* q, float* d) {
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += p[i] * p[i];
    s = block_sum(s);
    float scale = rsqrtf(s / dim + eps), s2 = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        x[i] += p[i] * scale * wp[i];
        s2 += x[i] * x[i];
    }
    s2 = block_sum(s2);
    norm_out_q8(x, w, out, dim, rsqrtf(s2 / dim + eps), q, d);
}

// h[t][j] = act(gu[t][j]) * gu[t][ffn + j]: SiLU (or GELU) of the gate times the up projection.
extern "C" __global__ void act_mul(const float* gu, float* h, int ffn, int n, int use_gelu) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (j >= ffn || t >= n) return;
    const float* r = gu + (size_t)t * 2 * ffn;
    float g = r[j];
    float a = use_gelu ? gelu(g) : g / (1.f + expf(-g));
    h[(size_t)t * ffn + j] = a * r[ffn + j];
}

// The position of a batch's first token comes from GPU memory (`pos_p`), as the token ids do,
// so a decode step's launches are the same every step and replay as one CUDA graph.

// After the q, k and v products of token t (a grid of (heads + 2 kv_heads, n), a block of
// head_dim / 2 threads rounded up to whole warps, each one rotary pair): the biases (qwen2), the
// per-head norms (Gemma 3), rotary positions for q and k, then k and v into the f16 cache at the
// token's position.
extern "C" __global__ void qkv_post(float* qkv, int qkv_dim, const float* bias, const float* q_norm, const float* k_norm,
                                    float eps, const float* freqs, const int* pos_p, int heads, int kv_heads, int hd, int neox,
                                    __half* k_cache, __half* v_cache, int kv_dim) {
    int h = blockIdx.x, t = blockIdx.y, i = threadIdx.x, half = hd >> 1;
    bool pair = i < half;
    int p = *pos_p + t, off = h * hd;
    float* hv = qkv + (size_t)t * qkv_dim + off;
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = pair ? hv[a] : 0.f, x1 = pair ? hv[b] : 0.f;
    if (bias && pair) {
        x0 += bias[off + a];
        x1 += bias[off + b];
    }
    bool is_q = h < heads, is_v = h >= heads + kv_heads;
    if (!is_v) {
        const float* nw = is_q ? q_norm : k_norm;
        if (nw) {
            // A shuffle sum (a shared-memory atomic per thread took most of this kernel's time).
            float scale = rsqrtf(block_sum(x0 * x0 + x1 * x1) / hd + eps);
            if (pair) {
                x0 = x0 * scale * nw[a];
                x1 = x1 * scale * nw[b];
            }
        }
        if (!pair) return;
        float sn, cs;
        sincosf((float)p * freqs[i], &sn, &cs);
        float y0 = x0 * cs - x1 * sn, y1 = x0 * sn + x1 * cs;
        x0 = y0;
        x1 = y1;
    }
    if (!pair) return;
    if (is_q) {
        hv[a] = x0;
        hv[b] = x1;
    } else {
        int kvh = is_v ? h - heads - kv_heads : h - heads;
        __half* cache = (is_v ? v_cache : k_cache) + (size_t)p * kv_dim + kvh * hd;
        cache[a] = __float2half(x0);
        cache[b] = __float2half(x1);
    }
}

#include "attention.cuh"

// The kernels of Iris's CUDA engine for GGUF language models (compiled to PTX by build.rs and
// loaded by the driver at start-up). Weights stay quantised in GPU memory, in GGUF's blocks
// padded to 4-byte multiples on the host (`repack.rs`), so every field is read with aligned
// 32-bit loads. One matrix-vector kernel per weight type (a warp per row, a lane per 32 values)
// serves decoding and short prompts; long prompts are dequantised to f16 and go to cuBLAS.
#include <cuda_fp16.h>
#include <stdint.h>

#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q5_0 4
#define T_Q5_1 5
#define T_Q8_0 6
#define T_Q4_K 7
#define T_Q5_K 8
#define T_Q6_K 9
#define T_BF16 10

__device__ __forceinline__ uint32_t ld32(const uint8_t* p) { return *(const uint32_t*)p; }
__device__ __forceinline__ float ldh(const uint8_t* p) { return __half2float(*(const __half*)p); }

// The 32 values of chunk `c` of a row (chunk c = values 32c..32c+31), for each weight type.
// Block layouts (bytes, after padding): see repack.rs.
template <int T> __device__ __forceinline__ void deq(const uint8_t* row, int c, float* y);

template <> __device__ __forceinline__ void deq<T_F32>(const uint8_t* row, int c, float* y) {
    const float4* p = (const float4*)(row + c * 128);
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float4 v = p[i];
        y[4 * i] = v.x; y[4 * i + 1] = v.y; y[4 * i + 2] = v.z; y[4 * i + 3] = v.w;
    }
}

template <> __device__ __forceinline__ void deq<T_F16>(const uint8_t* row, int c, float* y) {
    const __half2* p = (const __half2*)(row + c * 64);
#pragma unroll
    for (int i = 0; i < 16; i++) {
        float2 v = __half22float2(p[i]);
        y[2 * i] = v.x; y[2 * i + 1] = v.y;
    }
}

template <> __device__ __forceinline__ void deq<T_BF16>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + c * 64;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        uint32_t q = ld32(b + 4 * i);
        y[2 * i] = __uint_as_float(q << 16);
        y[2 * i + 1] = __uint_as_float(q & 0xffff0000u);
    }
}

// Q4_0, padded to 20 bytes: d (f16), 2 bytes of padding, 16 bytes of nibbles.
template <> __device__ __forceinline__ void deq<T_Q4_0>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + c * 20;
    float d = ldh(b);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        uint32_t q = ld32(b + 4 + 4 * k);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int byte = (q >> (8 * j)) & 0xff;
            y[4 * k + j] = d * (float)((byte & 0xf) - 8);
            y[4 * k + j + 16] = d * (float)((byte >> 4) - 8);
        }
    }
}

// Q4_1, 20 bytes: d, m (f16), 16 bytes of nibbles.
template <> __device__ __forceinline__ void deq<T_Q4_1>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + c * 20;
    float d = ldh(b), m = ldh(b + 2);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        uint32_t q = ld32(b + 4 + 4 * k);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int byte = (q >> (8 * j)) & 0xff;
            y[4 * k + j] = d * (float)(byte & 0xf) + m;
            y[4 * k + j + 16] = d * (float)(byte >> 4) + m;
        }
    }
}

// Q5_0, padded to 24 bytes: d, 2 bytes of padding, the fifth bits (u32), 16 bytes of nibbles.
template <> __device__ __forceinline__ void deq<T_Q5_0>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + c * 24;
    float d = ldh(b);
    uint32_t qh = ld32(b + 4);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        uint32_t q = ld32(b + 8 + 4 * k);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int i = 4 * k + j, byte = (q >> (8 * j)) & 0xff;
            int x0 = (byte & 0xf) | (((qh >> i) << 4) & 0x10);
            int x1 = (byte >> 4) | ((qh >> (i + 12)) & 0x10);
            y[i] = d * (float)(x0 - 16);
            y[i + 16] = d * (float)(x1 - 16);
        }
    }
}

// Q5_1, 24 bytes: d, m, the fifth bits, 16 bytes of nibbles.
template <> __device__ __forceinline__ void deq<T_Q5_1>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + c * 24;
    float d = ldh(b), m = ldh(b + 2);
    uint32_t qh = ld32(b + 4);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        uint32_t q = ld32(b + 8 + 4 * k);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int i = 4 * k + j, byte = (q >> (8 * j)) & 0xff;
            int x0 = (byte & 0xf) | (((qh >> i) << 4) & 0x10);
            int x1 = (byte >> 4) | ((qh >> (i + 12)) & 0x10);
            y[i] = d * (float)x0 + m;
            y[i + 16] = d * (float)x1 + m;
        }
    }
}

// Q8_0, padded to 36 bytes: d, 2 bytes of padding, 32 signed bytes.
template <> __device__ __forceinline__ void deq<T_Q8_0>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + c * 36;
    float d = ldh(b);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t q = ld32(b + 4 + 4 * k);
#pragma unroll
        for (int j = 0; j < 4; j++) y[4 * k + j] = d * (float)(int8_t)((q >> (8 * j)) & 0xff);
    }
}

// The 6-bit scale and minimum of sub-block j of a Q4_K or Q5_K block (ggml's get_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t* s, float* sc, float* m) {
    if (j < 4) {
        *sc = (float)(s[j] & 63);
        *m = (float)(s[j + 4] & 63);
    } else {
        *sc = (float)((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
        *m = (float)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Q4_K, 144 bytes per 256 values: d, dmin, 12 bytes of scales, 128 bytes of nibbles (64 values
// per 32 bytes: the low nibbles, then the high).
template <> __device__ __forceinline__ void deq<T_Q4_K>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + (c >> 3) * 144;
    int j = c & 7;
    float sc, m;
    scale_min_k4(j, b + 4, &sc, &m);
    float d = ldh(b) * sc, mn = ldh(b + 2) * m;
    const uint8_t* q = b + 16 + 32 * (j >> 1);
    int shift = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t w = ld32(q + 4 * k) >> shift;
#pragma unroll
        for (int i = 0; i < 4; i++) y[4 * k + i] = d * (float)((w >> (8 * i)) & 0xf) - mn;
    }
}

// Q5_K, 176 bytes per 256 values: d, dmin, 12 bytes of scales, 32 bytes of fifth bits, 128
// bytes of nibbles.
template <> __device__ __forceinline__ void deq<T_Q5_K>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + (c >> 3) * 176;
    int j = c & 7;
    float sc, m;
    scale_min_k4(j, b + 4, &sc, &m);
    float d = ldh(b) * sc, mn = ldh(b + 2) * m;
    const uint8_t* qh = b + 16;
    const uint8_t* q = b + 48 + 32 * (j >> 1);
    int shift = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t w = ld32(q + 4 * k) >> shift, h = ld32(qh + 4 * k) >> j;
#pragma unroll
        for (int i = 0; i < 4; i++) y[4 * k + i] = d * (float)(((w >> (8 * i)) & 0xf) | (((h >> (8 * i)) & 1) << 4)) - mn;
    }
}

// Q6_K, padded to 212 bytes per 256 values: 128 bytes of low nibbles, 64 of high bit pairs, 16
// signed scales, d.
template <> __device__ __forceinline__ void deq<T_Q6_K>(const uint8_t* row, int c, float* y) {
    const uint8_t* b = row + (c >> 3) * 212;
    int j = c & 7, h = j >> 2, k = j & 3;
    float d = ldh(b + 208);
    const int8_t* scales = (const int8_t*)(b + 192 + h * 8 + 2 * k);
    float d0 = d * (float)scales[0], d1 = d * (float)scales[1];
    const uint8_t* ql = b + h * 64 + (k & 1) * 32;
    const uint8_t* qh = b + 128 + h * 32;
    int lshift = (k >> 1) * 4, hshift = 2 * k;
#pragma unroll
    for (int w = 0; w < 8; w++) {
        uint32_t lo = ld32(ql + 4 * w) >> lshift, hi = ld32(qh + 4 * w) >> hshift;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int l = 4 * w + i;
            int q = (int)(((lo >> (8 * i)) & 0xf) | (((hi >> (8 * i)) & 3) << 4)) - 32;
            y[l] = (l < 16 ? d0 : d1) * (float)q;
        }
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum (or maximum) over a block whose size is a multiple of 32 (at most 1024).
__device__ float block_sum(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : 0.f;
    return warp_sum(v);
}

__device__ float block_max(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : -INFINITY;
    return warp_max(v);
}

__device__ __forceinline__ float round_f16(float v) { return __half2float(__float2half(v)); }

// GELU (tanh approximation) as ggml's CPU backend computes it: through f16, and the identity or
// zero beyond ±10 (the CPU engine's `ops::gelu`).
__device__ __forceinline__ float gelu(float x) {
    if (x <= -10.f) return 0.f;
    if (x >= 10.f) return x;
    x = round_f16(x);
    return round_f16(0.5f * x * (1.f + tanhf(0.7978845608f * x * (1.f + 0.044715f * x * x))));
}

// A lane's share of a row's dot product with x, a "unit" of U values at a time, laid out so
// that neighbouring lanes read neighbouring bytes (one warp-wide load then touches a few
// contiguous sectors, not one per lane). Each adds w[unit] · x[t][unit] to acc[t] for t < nt.
// The default decodes 32 values with `deq` and takes them whole.
template <int T>
struct Unit {
    static constexpr int U = 32;
    template <int NT>
    __device__ __forceinline__ static void dot(const uint8_t* row, int u, const float* x, int xs, int nt, float* acc) {
        float v[32];
        deq<T>(row, u, v);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < nt) {
                const float4* xv = (const float4*)(x + (size_t)t * xs + (u << 5));
                float s = 0.f;
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    float4 a = __ldg(xv + i);
                    s += v[4 * i] * a.x + v[4 * i + 1] * a.y + v[4 * i + 2] * a.z + v[4 * i + 3] * a.w;
                }
                acc[t] += s;
            }
        }
    }
};

__device__ __forceinline__ float fx(float4 a, int i) { return i == 0 ? a.x : i == 1 ? a.y : i == 2 ? a.z : a.w; }

// Q8_0: four lanes per block, 8 values each.
template <>
struct Unit<T_Q8_0> {
    static constexpr int U = 8;
    template <int NT>
    __device__ __forceinline__ static void dot(const uint8_t* row, int u, const float* x, int xs, int nt, float* acc) {
        const uint8_t* b = row + (u >> 2) * 36;
        int k = u & 3;
        float d = ldh(b);
        uint32_t w0 = ld32(b + 4 + 8 * k), w1 = ld32(b + 8 + 8 * k);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < nt) {
                const float4* xv = (const float4*)(x + (size_t)t * xs + (u << 3));
                float4 a = __ldg(xv), c = __ldg(xv + 1);
                float s = 0.f;
#pragma unroll
                for (int i = 0; i < 4; i++) s += (float)(int8_t)(w0 >> (8 * i)) * fx(a, i) + (float)(int8_t)(w1 >> (8 * i)) * fx(c, i);
                acc[t] += d * s;
            }
        }
    }
};

// Q4_K: eight lanes per block; a lane reads 16 bytes of nibbles, 16 values of each of two
// sub-blocks (the low nibbles one, the high the next), and takes the scales and minimums out
// of the sums.
template <>
struct Unit<T_Q4_K> {
    static constexpr int U = 32;
    template <int NT>
    __device__ __forceinline__ static void dot(const uint8_t* row, int u, const float* x, int xs, int nt, float* acc) {
        const uint8_t* b = row + (u >> 3) * 144;
        int j = u & 7, g = j >> 1, half = j & 1;
        uint4 q = *(const uint4*)(b + 16 + 32 * g + 16 * half);
        uint32_t w[4] = {q.x, q.y, q.z, q.w};
        float sc0, m0, sc1, m1;
        scale_min_k4(2 * g, b + 4, &sc0, &m0);
        scale_min_k4(2 * g + 1, b + 4, &sc1, &m1);
        float d = ldh(b), dmin = ldh(b + 2);
        int base = (u >> 3) * 256 + 64 * g + 16 * half;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < nt) {
                const float* xr = x + (size_t)t * xs + base;
                float s0 = 0.f, s1 = 0.f, x0 = 0.f, x1 = 0.f;
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float4 a = __ldg((const float4*)(xr + 4 * k)), c = __ldg((const float4*)(xr + 32 + 4 * k));
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        uint32_t byte = (w[k] >> (8 * i)) & 0xff;
                        s0 += (float)(byte & 0xf) * fx(a, i);
                        s1 += (float)(byte >> 4) * fx(c, i);
                        x0 += fx(a, i);
                        x1 += fx(c, i);
                    }
                }
                acc[t] += d * (sc0 * s0 + sc1 * s1) - dmin * (m0 * x0 + m1 * x1);
            }
        }
    }
};

// Q6_K: eight lanes per block; a lane takes 8 positions l of one half, and the four values each
// position holds (l, l + 32, l + 64, l + 96).
template <>
struct Unit<T_Q6_K> {
    static constexpr int U = 32;
    template <int NT>
    __device__ __forceinline__ static void dot(const uint8_t* row, int u, const float* x, int xs, int nt, float* acc) {
        const uint8_t* b = row + (u >> 3) * 212;
        int j = u & 7, h = j >> 2, l0 = (j & 3) * 8;
        const uint8_t* ql = b + h * 64 + l0;
        const uint8_t* qh = b + 128 + h * 32 + l0;
        uint32_t la[2] = {ld32(ql), ld32(ql + 4)}, lb[2] = {ld32(ql + 32), ld32(ql + 36)}, hh[2] = {ld32(qh), ld32(qh + 4)};
        const int8_t* sc = (const int8_t*)(b + 192 + h * 8 + (l0 >> 4));
        float d = ldh(b + 208);
        float d1 = d * (float)sc[0], d2 = d * (float)sc[2], d3 = d * (float)sc[4], d4 = d * (float)sc[6];
        int base = (u >> 3) * 256 + 128 * h + l0;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < nt) {
                const float* xr = x + (size_t)t * xs + base;
                float s1 = 0.f, s2 = 0.f, s3 = 0.f, s4 = 0.f;
#pragma unroll
                for (int k = 0; k < 2; k++) {
                    float4 x1 = __ldg((const float4*)(xr + 4 * k)), x2 = __ldg((const float4*)(xr + 32 + 4 * k));
                    float4 x3 = __ldg((const float4*)(xr + 64 + 4 * k)), x4 = __ldg((const float4*)(xr + 96 + 4 * k));
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        int sh = 8 * i;
                        int a = (la[k] >> sh) & 0xff, c = (lb[k] >> sh) & 0xff, hq = (hh[k] >> sh) & 0xff;
                        s1 += (float)(((a & 0xf) | ((hq & 3) << 4)) - 32) * fx(x1, i);
                        s2 += (float)(((c & 0xf) | (((hq >> 2) & 3) << 4)) - 32) * fx(x2, i);
                        s3 += (float)(((a >> 4) | (((hq >> 4) & 3) << 4)) - 32) * fx(x3, i);
                        s4 += (float)(((c >> 4) | (((hq >> 6) & 3) << 4)) - 32) * fx(x4, i);
                    }
                }
                acc[t] += d1 * s1 + d2 * s2 + d3 * s3 + d4 * s4;
            }
        }
    }
};

// F16: a lane reads 8 values (16 bytes).
template <>
struct Unit<T_F16> {
    static constexpr int U = 8;
    template <int NT>
    __device__ __forceinline__ static void dot(const uint8_t* row, int u, const float* x, int xs, int nt, float* acc) {
        uint4 q = *(const uint4*)(row + 16 * u);
        const __half2* h = (const __half2*)&q;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < nt) {
                const float4* xv = (const float4*)(x + (size_t)t * xs + (u << 3));
                float4 a = __ldg(xv), c = __ldg(xv + 1);
                float2 h0 = __half22float2(h[0]), h1 = __half22float2(h[1]), h2 = __half22float2(h[2]), h3 = __half22float2(h[3]);
                acc[t] += h0.x * a.x + h0.y * a.y + h1.x * a.z + h1.y * a.w + h2.x * c.x + h2.y * c.y + h3.x * c.z + h3.y * c.w;
            }
        }
    }
};

#include "qdot.cuh"

// y[t][row] (+)= w[row] · x[t] for the tokens of this block's column of the grid (NT of them).
// With one token and a type that has an int8 form (`QUnit`), the products take `xq`/`xd`,
// the activation quantised by `quantize_q8`.
// A block is 4 warps; `wpr` of them (1, 2 or 4) share a row, each lane taking a unit at a time,
// so a long row (a feed-forward's down projection) is read by more loads at once.
template <int T, int NT>
__device__ __forceinline__ void matmul_impl(const uint8_t* __restrict__ w, int rows, int cols, long long row_bytes,
                                            const float* __restrict__ x, int n, int x_stride, float* y, int y_stride,
                                            int accumulate, int wpr, const int8_t* __restrict__ xq, const float* __restrict__ xd) {
    __shared__ float red[4][NT];
    int wy = threadIdx.y, lane = threadIdx.x;
    int row = blockIdx.x * (4 / wpr) + wy / wpr, part = wy % wpr;
    int t0 = blockIdx.y * NT;
    bool active = row < rows;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    if (active) {
        const uint8_t* wr = w + (size_t)row * row_bytes;
        const float* xt = x + (size_t)t0 * x_stride;
        int units = cols / Unit<T>::U, nt = min(NT, n - t0);
        if constexpr (NT == 1 && QUnit<T>::has) {
#pragma unroll 2
            for (int u = part * 32 + lane; u < units; u += 32 * wpr) acc[0] += QUnit<T>::dot(wr, u, xq, xd);
        } else {
#pragma unroll 2
            for (int u = part * 32 + lane; u < units; u += 32 * wpr) Unit<T>::template dot<NT>(wr, u, xt, x_stride, nt, acc);
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = warp_sum(acc[t]);
    if (wpr > 1) {
        if (lane == 0) {
#pragma unroll
            for (int t = 0; t < NT; t++) red[wy][t] = acc[t];
        }
        __syncthreads();
        if (lane == 0 && part == 0) {
#pragma unroll
            for (int t = 0; t < NT; t++) {
                acc[t] = 0.f;
                for (int p = 0; p < wpr; p++) acc[t] += red[wy + p][t];
            }
        }
    }
    if (lane == 0 && part == 0 && active) {
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t0 + t < n) {
                float* o = y + (size_t)(t0 + t) * y_stride + row;
                *o = accumulate ? *o + acc[t] : acc[t];
            }
        }
    }
}

// The feed-forward's first half in one pass: h[t][row] = act(gate[row] · x[t]) · (up[row] · x[t])
// (SiLU, or GELU for Gemma), gate and up of one weight type, laid out as `matmul_impl`.
template <int T, int NT>
__device__ __forceinline__ void gated_impl(const uint8_t* __restrict__ wg, const uint8_t* __restrict__ wu, int rows, int cols,
                                           long long row_bytes, const float* __restrict__ x, int n, int x_stride, float* h,
                                           int h_stride, int use_gelu, int wpr, const int8_t* __restrict__ xq,
                                           const float* __restrict__ xd) {
    __shared__ float red[4][2 * NT];
    int wy = threadIdx.y, lane = threadIdx.x;
    int row = blockIdx.x * (4 / wpr) + wy / wpr, part = wy % wpr;
    int t0 = blockIdx.y * NT;
    bool active = row < rows;
    float ag[NT], au[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) ag[t] = au[t] = 0.f;
    if (active) {
        const uint8_t* g = wg + (size_t)row * row_bytes;
        const uint8_t* u_ = wu + (size_t)row * row_bytes;
        const float* xt = x + (size_t)t0 * x_stride;
        int units = cols / Unit<T>::U, nt = min(NT, n - t0);
        if constexpr (NT == 1 && QUnit<T>::has) {
            for (int u = part * 32 + lane; u < units; u += 32 * wpr) {
                ag[0] += QUnit<T>::dot(g, u, xq, xd);
                au[0] += QUnit<T>::dot(u_, u, xq, xd);
            }
        } else {
            for (int u = part * 32 + lane; u < units; u += 32 * wpr) {
                Unit<T>::template dot<NT>(g, u, xt, x_stride, nt, ag);
                Unit<T>::template dot<NT>(u_, u, xt, x_stride, nt, au);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        ag[t] = warp_sum(ag[t]);
        au[t] = warp_sum(au[t]);
    }
    if (wpr > 1) {
        if (lane == 0) {
#pragma unroll
            for (int t = 0; t < NT; t++) {
                red[wy][t] = ag[t];
                red[wy][NT + t] = au[t];
            }
        }
        __syncthreads();
        if (lane == 0 && part == 0) {
#pragma unroll
            for (int t = 0; t < NT; t++) {
                ag[t] = au[t] = 0.f;
                for (int p = 0; p < wpr; p++) {
                    ag[t] += red[wy + p][t];
                    au[t] += red[wy + p][NT + t];
                }
            }
        }
    }
    if (lane == 0 && part == 0 && active) {
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t0 + t < n) {
                float a = use_gelu ? gelu(ag[t]) : ag[t] / (1.f + expf(-ag[t]));
                h[(size_t)(t0 + t) * h_stride + row] = a * au[t];
            }
        }
    }
}

// A lane's share of one row's dot product with one token's x (a decode step), for a weight type
// known only at run time.
template <int T>
__device__ __forceinline__ float row_dot(const uint8_t* row, int cols, const float* x, const int8_t* xq, const float* xd, int first,
                                         int step) {
    float acc[1] = {0.f};
    if constexpr (QUnit<T>::has) {
        for (int u = first; u < cols / Unit<T>::U; u += step) acc[0] += QUnit<T>::dot(row, u, xq, xd);
    } else {
        for (int u = first; u < cols / Unit<T>::U; u += step) Unit<T>::template dot<1>(row, u, x, 0, 1, acc);
    }
    return acc[0];
}

__device__ float row_dot_any(int type, const uint8_t* row, int cols, const float* x, const int8_t* xq, const float* xd, int first,
                             int step) {
    switch (type) {
        case T_F32: return row_dot<T_F32>(row, cols, x, xq, xd, first, step);
        case T_F16: return row_dot<T_F16>(row, cols, x, xq, xd, first, step);
        case T_BF16: return row_dot<T_BF16>(row, cols, x, xq, xd, first, step);
        case T_Q4_0: return row_dot<T_Q4_0>(row, cols, x, xq, xd, first, step);
        case T_Q4_1: return row_dot<T_Q4_1>(row, cols, x, xq, xd, first, step);
        case T_Q5_0: return row_dot<T_Q5_0>(row, cols, x, xq, xd, first, step);
        case T_Q5_1: return row_dot<T_Q5_1>(row, cols, x, xq, xd, first, step);
        case T_Q8_0: return row_dot<T_Q8_0>(row, cols, x, xq, xd, first, step);
        case T_Q4_K: return row_dot<T_Q4_K>(row, cols, x, xq, xd, first, step);
        case T_Q5_K: return row_dot<T_Q5_K>(row, cols, x, xq, xd, first, step);
        default: return row_dot<T_Q6_K>(row, cols, x, xq, xd, first, step);
    }
}

// A decode step's q, k and v products in one launch: the grid runs over the rows of all three
// (their outputs lie one after another in y), each of its own weight type.
extern "C" __global__ void mv_qkv(const uint8_t* wq, const uint8_t* wk, const uint8_t* wv, int tq, int tk, int tv, int rq, int rk,
                                  int rv, long long bq, long long bk, long long bv, int cols, const float* x, float* y, int wpr,
                                  const int8_t* xq, const float* xd) {
    __shared__ float red[4];
    int wy = threadIdx.y, lane = threadIdx.x;
    int row = blockIdx.x * (4 / wpr) + wy / wpr, part = wy % wpr;
    bool active = row < rq + rk + rv;
    float acc = 0.f;
    if (active) {
        const uint8_t* w;
        int type;
        if (row < rq) {
            w = wq + (size_t)row * bq;
            type = tq;
        } else if (row < rq + rk) {
            w = wk + (size_t)(row - rq) * bk;
            type = tk;
        } else {
            w = wv + (size_t)(row - rq - rk) * bv;
            type = tv;
        }
        acc = row_dot_any(type, w, cols, x, xq, xd, part * 32 + lane, 32 * wpr);
    }
    acc = warp_sum(acc);
    if (wpr > 1) {
        if (lane == 0) red[wy] = acc;
        __syncthreads();
        if (lane == 0 && part == 0)
            for (int p = 1; p < wpr; p++) acc += red[wy + p];
    }
    if (lane == 0 && part == 0 && active) y[row] = acc;
}

// Rows of a matrix dequantised to f16 (for cuBLAS), a warp per row.
template <int T>
__device__ __forceinline__ void dequant_impl(const uint8_t* __restrict__ w, int rows, int cols, long long row_bytes, __half* out) {
    int row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= rows) return;
    const uint8_t* wr = w + (size_t)row * row_bytes;
    for (int c = threadIdx.x; c < (cols >> 5); c += 32) {
        float v[32];
        deq<T>(wr, c, v);
        __half2* o = (__half2*)(out + (size_t)row * cols + (c << 5));
#pragma unroll
        for (int i = 0; i < 16; i++) o[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    }
}

// Embedding rows of `tokens`, times `scale` (Gemma's √dim): a block of 32 per token.
template <int T>
__device__ __forceinline__ void embed_impl(const uint8_t* __restrict__ table, long long row_bytes, const int* tokens, float* x, int dim,
                                           float scale) {
    const uint8_t* wr = table + (size_t)tokens[blockIdx.x] * row_bytes;
    float* o = x + (size_t)blockIdx.x * dim;
    for (int c = threadIdx.x; c < (dim >> 5); c += 32) {
        float v[32];
        deq<T>(wr, c, v);
#pragma unroll
        for (int i = 0; i < 32; i++) o[(c << 5) + i] = v[i] * scale;
    }
}

#define PER_TYPE(name, T)                                                                                                  \
    extern "C" __global__ void mv_##name(const uint8_t* w, int rows, int cols, long long row_bytes, const float* x, int n,  \
                                         int x_stride, float* y, int y_stride, int accumulate, int wpr, const int8_t* xq,  \
                                         const float* xd) {                                                               \
        matmul_impl<T, 1>(w, rows, cols, row_bytes, x, n, x_stride, y, y_stride, accumulate, wpr, xq, xd);              \
    }                                                                                                                      \
    extern "C" __global__ void mm_##name(const uint8_t* w, int rows, int cols, long long row_bytes, const float* x, int n,  \
                                         int x_stride, float* y, int y_stride, int accumulate, int wpr) {                 \
        matmul_impl<T, 4>(w, rows, cols, row_bytes, x, n, x_stride, y, y_stride, accumulate, wpr, nullptr, nullptr);     \
    }                                                                                                                      \
    extern "C" __global__ void gated_mv_##name(const uint8_t* wg, const uint8_t* wu, int rows, int cols, long long row_bytes, \
                                               const float* x, int n, int x_stride, float* h, int h_stride, int use_gelu,  \
                                               int wpr, const int8_t* xq, const float* xd) {                               \
        gated_impl<T, 1>(wg, wu, rows, cols, row_bytes, x, n, x_stride, h, h_stride, use_gelu, wpr, xq, xd);            \
    }                                                                                                                      \
    extern "C" __global__ void gated_mm_##name(const uint8_t* wg, const uint8_t* wu, int rows, int cols, long long row_bytes, \
                                               const float* x, int n, int x_stride, float* h, int h_stride, int use_gelu,  \
                                               int wpr) {                                                                  \
        gated_impl<T, 4>(wg, wu, rows, cols, row_bytes, x, n, x_stride, h, h_stride, use_gelu, wpr, nullptr, nullptr);   \
    }                                                                                                                      \
    extern "C" __global__ void dequant_##name(const uint8_t* w, int rows, int cols, long long row_bytes, __half* out) {    \
        dequant_impl<T>(w, rows, cols, row_bytes, out);                                                                    \
    }                                                                                                                      \
    extern "C" __global__ void embed_##name(const uint8_t* table, long long row_bytes, const int* tokens, float* x, int dim, \
                                            float scale) {                                                                \
        embed_impl<T>(table, row_bytes, tokens, x, dim, scale);                                                            \
    }

PER_TYPE(f32, T_F32)
PER_TYPE(f16, T_F16)
PER_TYPE(bf16, T_BF16)
PER_TYPE(q4_0, T_Q4_0)
PER_TYPE(q4_1, T_Q4_1)
PER_TYPE(q5_0, T_Q5_0)
PER_TYPE(q5_1, T_Q5_1)
PER_TYPE(q8_0, T_Q8_0)
PER_TYPE(q4_k, T_Q4_K)
PER_TYPE(q5_k, T_Q5_K)
PER_TYPE(q6_k, T_Q6_K)

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
// head_dim / 2 threads, each one rotary pair): the biases (qwen2), the per-head norms (Gemma 3),
// rotary positions for q and k, then k and v into the f16 cache at the token's position.
extern "C" __global__ void qkv_post(float* qkv, int qkv_dim, const float* bias, const float* q_norm, const float* k_norm,
                                    float eps, const float* freqs, const int* pos_p, int heads, int kv_heads, int hd, int neox,
                                    __half* k_cache, __half* v_cache, int kv_dim) {
    __shared__ float ss;
    int h = blockIdx.x, t = blockIdx.y, i = threadIdx.x, half = hd >> 1;
    int p = *pos_p + t, off = h * hd;
    float* hv = qkv + (size_t)t * qkv_dim + off;
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = hv[a], x1 = hv[b];
    if (bias) {
        x0 += bias[off + a];
        x1 += bias[off + b];
    }
    bool is_q = h < heads, is_v = h >= heads + kv_heads;
    if (!is_v) {
        const float* nw = is_q ? q_norm : k_norm;
        if (nw) {
            if (i == 0) ss = 0.f;
            __syncthreads();
            atomicAdd(&ss, x0 * x0 + x1 * x1);
            __syncthreads();
            float scale = rsqrtf(ss / hd + eps);
            x0 = x0 * scale * nw[a];
            x1 = x1 * scale * nw[b];
        }
        float sn, cs;
        sincosf((float)p * freqs[i], &sn, &cs);
        float y0 = x0 * cs - x1 * sn, y1 = x0 * sn + x1 * cs;
        x0 = y0;
        x1 = y1;
    }
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

// Attention of query t (at position pos0 + t) of head h over one split of the positions it sees
// (flash-decoding: a decode step has one query per head, too few blocks to fill the GPU, so the
// positions are split across the grid's z blocks and `attn_combine` joins the parts). A block of
// 256 threads per (head, token, split). Shared memory: the query, the split's scores, and the
// values' partial sums (256 floats). As llama.cpp's CPU backend (and Iris's CPU engine), the
// query meets the f16 keys rounded to f16. Writes the split's values (unnormalised), its maximum
// score and its sum of exponentials to `part[t][h][split]` (head_dim + 2 floats); a split with
// no positions writes a sum of 0. `window` > 0: the layer sees only its last `window` positions.
extern "C" __global__ void attn_part(const float* qkv, int qkv_dim, const __half* k_cache, const __half* v_cache, int kv_dim,
                                     float* part, const int* pos_p, int heads, int kv_heads, int hd, float scale, int window,
                                     int min_chunk) {
    extern __shared__ float sh[];
    float* q = sh;
    float* sc = sh + hd;
    int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z, splits = gridDim.z;
    int upto = *pos_p + t + 1, from = window > 0 ? max(0, upto - window) : 0;
    // Splits of at least min_chunk positions, a multiple of 32 (the host sizes shared memory for
    // the longest the context allows).
    int chunk = (max(min_chunk, (upto - from + splits - 1) / splits) + 31) & ~31;
    int s0 = from + sp * chunk, s1 = min(upto, s0 + chunk);
    float* out = part + (((size_t)t * heads + h) * splits + sp) * (hd + 2);
    if (s0 >= s1) {
        if (threadIdx.x == 0) {
            out[hd] = -INFINITY;
            out[hd + 1] = 0.f;
        }
        return;
    }
    int kvh = h / (heads / kv_heads), warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) q[d] = round_f16(qkv[(size_t)t * qkv_dim + h * hd + d]);
    __syncthreads();
    // Scores: eight threads per key (each an eighth of the head), 32 keys at a time.
    const __half* kh = k_cache + kvh * hd;
    int g = threadIdx.x >> 3, gl = threadIdx.x & 7, per = hd >> 3, keys = blockDim.x >> 3;
    for (int base = s0; base < s1; base += keys) {
        int s = base + g;
        float acc = 0.f;
        if (s < s1) {
            const __half2* k = (const __half2*)(kh + (size_t)s * kv_dim + gl * per);
            const float* qq = q + gl * per;
            for (int d = 0; d < (per >> 1); d++) {
                float2 kk = __half22float2(k[d]);
                acc += qq[2 * d] * kk.x + qq[2 * d + 1] * kk.y;
            }
        }
        acc += __shfl_xor_sync(0xffffffffu, acc, 1);
        acc += __shfl_xor_sync(0xffffffffu, acc, 2);
        acc += __shfl_xor_sync(0xffffffffu, acc, 4);
        if (gl == 0 && s < s1) sc[s - s0] = acc * scale;
    }
    __syncthreads();
    int len = s1 - s0;
    if (warp == 0) {
        float m = -INFINITY;
        for (int i = lane; i < len; i += 32) m = fmaxf(m, sc[i]);
        m = warp_max(m);
        float l = 0.f;
        for (int i = lane; i < len; i += 32) {
            float e = expf(sc[i] - m);
            sc[i] = e;
            l += e;
        }
        l = warp_sum(l);
        if (lane == 0) {
            out[hd] = m;
            out[hd + 1] = l;
        }
    }
    __syncthreads();
    // Values: a thread per dimension and group of keys, the groups summed in shared memory.
    float* red = sc + chunk;
    int groups = blockDim.x / hd, d = threadIdx.x % hd, grp = threadIdx.x / hd;
    if (grp < groups) {
        const __half* vh = v_cache + (size_t)s0 * kv_dim + kvh * hd + d;
        float acc = 0.f;
#pragma unroll 4
        for (int i = grp; i < len; i += groups) acc += sc[i] * __half2float(vh[(size_t)i * kv_dim]);
        red[grp * hd + d] = acc;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < hd; e += blockDim.x) {
        float acc = 0.f;
        for (int k = 0; k < groups; k++) acc += red[k * hd + e];
        out[e] = acc;
    }
}

// Joins the splits of `attn_part`: out[t][h] = Σ values·e^(max−M) / Σ sums·e^(max−M).
extern "C" __global__ void attn_combine(const float* part, float* out, int q_dim, int heads, int hd, int splits) {
    int h = blockIdx.x, t = blockIdx.y;
    const float* p = part + ((size_t)t * heads + h) * splits * (hd + 2);
    float m = -INFINITY;
    for (int s = 0; s < splits; s++)
        if (p[s * (hd + 2) + hd + 1] > 0.f) m = fmaxf(m, p[s * (hd + 2) + hd]);
    float l = 0.f;
    for (int s = 0; s < splits; s++) {
        const float* ps = p + s * (hd + 2);
        if (ps[hd + 1] > 0.f) l += ps[hd + 1] * expf(ps[hd] - m);
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.f;
        for (int s = 0; s < splits; s++) {
            const float* ps = p + s * (hd + 2);
            if (ps[hd + 1] > 0.f) acc += ps[d] * expf(ps[hd] - m);
        }
        out[(size_t)t * q_dim + h * hd + d] = acc / l;
    }
}

// The largest |x| of `count` values, into `bits` (a float's bits: non-negative floats order as
// their bits do), which must start at 0.
extern "C" __global__ void absmax(const float* x, int count, unsigned int* bits) {
    float m = 0.f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) m = fmaxf(m, fabsf(x[i]));
    m = warp_max(m);
    if ((threadIdx.x & 31) == 0) atomicMax(bits, __float_as_uint(m));
}

// scale[1] = the divisor that keeps a batch's activations inside f16's range (1 unless some are
// beyond ±60000: f16 stops at 65504, and an inf would poison every later token), and the
// maximum's bits back to 0 for the next batch. scale[2] and scale[3] hold cuBLAS's betas, 0 and 1.
extern "C" __global__ void finish_scale(float* scale) {
    unsigned int* bits = (unsigned int*)scale;
    float m = __uint_as_float(*bits);
    scale[1] = fmaxf(1.f, m / 60000.f);
    scale[2] = 0.f;
    scale[3] = 1.f;
    *bits = 0u;
}

// f32 to f16 divided by scale[1], for cuBLAS's operands (cuBLAS multiplies back by it).
extern "C" __global__ void to_half(const float* x, __half* y, int n, const float* scale) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2half(x[i] / scale[1]);
}

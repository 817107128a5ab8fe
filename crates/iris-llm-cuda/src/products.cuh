// The matrix-vector and gated products, the dequantisation to f16 and the embedding lookup,
// each instantiated per weight type (`PER_TYPE`). Included by kernels.cu after qdot.cuh.


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

// A decode step's or a prompt's attention over the f16 KV cache, and the f16 copies of
// activations for cuBLAS. Included last by kernels.cu.

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

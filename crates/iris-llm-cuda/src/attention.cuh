// A decode step's or a prompt's attention over the f16 KV cache, and the f16 copies of
// activations for cuBLAS. Included last by kernels.cu.

// Attention of query t (at position pos0 + t) of head h over one split of the positions it sees
// (flash-decoding: a decode step has one query per head, too few blocks to fill the GPU, so the
// positions are split across the grid's z blocks and `attn_combine` joins the parts). A block of
// 256 threads per (head, token, split). Shared memory: the query, the split's scores, and the
// values' partial sums (1024 floats). As llama.cpp's CPU backend (and Iris's CPU engine), the
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
    // Values: four dimensions a thread, the split's positions dealt among the groups of
    // head_dim / 4 threads (4 groups at a head of 256: a thread per dimension walked all the
    // split's positions one after another), the groups summed in shared memory.
    float* red = sc + chunk;
    int tpg = hd >> 2, groups = blockDim.x / tpg, grp = threadIdx.x / tpg, d = (threadIdx.x % tpg) * 4;
    if (grp < groups) {
        const __half* vh = v_cache + (size_t)s0 * kv_dim + kvh * hd + d;
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma unroll 4
        for (int i = grp; i < len; i += groups) {
            const __half2* v2 = (const __half2*)(vh + (size_t)i * kv_dim);
            float2 lo = __half22float2(v2[0]), hi = __half22float2(v2[1]);
            float w = sc[i];
            a0 += w * lo.x;
            a1 += w * lo.y;
            a2 += w * hi.x;
            a3 += w * hi.y;
        }
        float* r = red + grp * hd + d;
        r[0] = a0;
        r[1] = a1;
        r[2] = a2;
        r[3] = a3;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < hd; e += blockDim.x) {
        float acc = 0.f;
        for (int k = 0; k < groups; k++) acc += red[k * hd + e];
        out[e] = acc;
    }
}

// Joins the splits of `attn_part` (at most 32): out[t][h] = Σ values·e^(max−M) / Σ sums·e^(max−M).
// The first warp weighs the splits once (a split with no positions weighs 0 and is not read);
// then a thread per dimension sums the weighted splits.
extern "C" __global__ void attn_combine(const float* part, float* out, int q_dim, int heads, int hd, int splits) {
    __shared__ float weight[32], sums[32], total;
    int h = blockIdx.x, t = blockIdx.y;
    const float* p = part + ((size_t)t * heads + h) * splits * (hd + 2);
    if (threadIdx.x < 32) {
        int s = threadIdx.x;
        float sum = s < splits ? p[s * (hd + 2) + hd + 1] : 0.f;
        float mx = sum > 0.f ? p[s * (hd + 2) + hd] : -INFINITY;
        float m = warp_max(mx);
        weight[s] = sum > 0.f ? expf(mx - m) : 0.f;
        sums[s] = sum;
        __syncwarp();
        if (s == 0) {
            float l = 0.f;
            for (int k = 0; k < splits; k++)
                if (sums[k] > 0.f) l += sums[k] * weight[k];
            total = l;
        }
    }
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.f;
        for (int s = 0; s < splits; s++)
            if (weight[s] != 0.f) acc += p[s * (hd + 2) + d] * weight[s];
        out[(size_t)t * q_dim + h * hd + d] = acc / total;
    }
}

// The largest |x| of `count` values, into `bits` (a float's bits: non-negative floats order as
// their bits do), which must start at 0. Four values a load where `count` allows, and one atomic
// per block (one per warp, over a thousand blocks, took 10 µs on an 8B prompt's activations).
extern "C" __global__ void absmax(const float* x, int count, unsigned int* bits) {
    float m = 0.f;
    int stride = gridDim.x * blockDim.x, first = blockIdx.x * blockDim.x + threadIdx.x;
    int quads = (count & 3) == 0 ? count >> 2 : 0;
    const float4* x4 = (const float4*)x;
    for (int i = first; i < quads; i += stride) {
        float4 v = x4[i];
        m = fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
    }
    for (int i = (quads << 2) + first; i < count; i += stride) m = fmaxf(m, fabsf(x[i]));
    m = block_max(m);
    if (threadIdx.x == 0) atomicMax(bits, __float_as_uint(m));
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

// f32 to f16 divided by scale[1], for cuBLAS's operands (cuBLAS multiplies back by it): four
// values a thread where `n` allows.
extern "C" __global__ void to_half(const float* x, __half* y, int n, const float* scale) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float s = scale[1];
    if ((n & 3) == 0) {
        if (i >= n >> 2) return;
        float4 v = ((const float4*)x)[i];
        __half2* o = (__half2*)(y + 4 * (size_t)i);
        o[0] = __halves2half2(__float2half(v.x / s), __float2half(v.y / s));
        o[1] = __halves2half2(__float2half(v.z / s), __float2half(v.w / s));
    } else if (i < n) {
        y[i] = __float2half(x[i] / s);
    }
}

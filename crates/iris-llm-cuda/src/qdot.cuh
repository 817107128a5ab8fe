// A decode step's products on int8 activations, as llama.cpp's CUDA backend takes them (its
// `mul_mat_vec_q`): the token's activation vector is quantised once per product to int8 with a
// scale per 32 values (`quantize_q8`), and each lane multiplies four weight bytes by four
// activation bytes at a time (`__dp4a`). The f32 path read 4 bytes of activation for every
// weight value (16 times the bytes of a Q4_K weight) and spent two float operations a value; on
// an H200 it decoded the 1.5B to 8B K-quant shapes at x0.80 to x0.87 of llama.cpp.
// Included by kernels.cu after `Unit`, which this mirrors lane for lane.

// x (cols f32) into q (cols int8) and d (a scale per 32): a warp per 32 values.
extern "C" __global__ void quantize_q8(const float* x, int cols, int8_t* q, float* d) {
    int block = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (block * 32 >= cols) return;
    float v = x[block * 32 + lane];
    float amax = warp_max(fabsf(v));
    float scale = amax / 127.f;
    q[block * 32 + lane] = amax == 0.f ? 0 : (int8_t)roundf(v / scale);
    if (lane == 0) d[block] = scale;
}

__device__ __forceinline__ int ld32i(const int8_t* p) { return *(const int*)p; }

// The default: no int8 form (the f32 `Unit` serves that type).
template <int T>
struct QUnit {
    static constexpr bool has = false;
    __device__ __forceinline__ static float dot(const uint8_t*, int, const int8_t*, const float*) { return 0.f; }
};

// Q8_0: four lanes per block, 8 values each.
template <>
struct QUnit<T_Q8_0> {
    static constexpr bool has = true;
    __device__ __forceinline__ static float dot(const uint8_t* row, int u, const int8_t* xq, const float* xd) {
        const uint8_t* b = row + (u >> 2) * 36;
        int k = u & 3;
        const int8_t* xv = xq + (u << 3);
        int s = __dp4a((int)ld32(b + 4 + 8 * k), ld32i(xv), 0);
        s = __dp4a((int)ld32(b + 8 + 8 * k), ld32i(xv + 4), s);
        return ldh(b) * xd[u >> 2] * (float)s;
    }
};

// Q4_K: eight lanes per block; a lane takes 16 values of sub-block 2g (the low nibbles) and the
// same 16 of sub-block 2g + 1 (the high ones). The minimums meet the sums of the activation's
// int8 values, made by `__dp4a` with ones.
template <>
struct QUnit<T_Q4_K> {
    static constexpr bool has = true;
    __device__ __forceinline__ static float dot(const uint8_t* row, int u, const int8_t* xq, const float* xd) {
        const uint8_t* b = row + (u >> 3) * 144;
        int j = u & 7, g = j >> 1, half = j & 1;
        uint4 q = *(const uint4*)(b + 16 + 32 * g + 16 * half);
        uint32_t w[4] = {q.x, q.y, q.z, q.w};
        int base = (u >> 3) * 256 + 64 * g + 16 * half;
        int4 xl = *(const int4*)(xq + base), xh = *(const int4*)(xq + base + 32);
        int xa[4] = {xl.x, xl.y, xl.z, xl.w}, xb[4] = {xh.x, xh.y, xh.z, xh.w};
        int s0 = 0, s1 = 0, n0 = 0, n1 = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            s0 = __dp4a((int)(w[k] & 0x0f0f0f0fu), xa[k], s0);
            s1 = __dp4a((int)((w[k] >> 4) & 0x0f0f0f0fu), xb[k], s1);
            n0 = __dp4a(0x01010101, xa[k], n0);
            n1 = __dp4a(0x01010101, xb[k], n1);
        }
        float sc0, m0, sc1, m1;
        scale_min_k4(2 * g, b + 4, &sc0, &m0);
        scale_min_k4(2 * g + 1, b + 4, &sc1, &m1);
        float dx0 = xd[base >> 5], dx1 = xd[(base >> 5) + 1];
        return ldh(b) * (sc0 * dx0 * (float)s0 + sc1 * dx1 * (float)s1) - ldh(b + 2) * (m0 * dx0 * (float)n0 + m1 * dx1 * (float)n1);
    }
};

// Q6_K: eight lanes per block; a lane takes 8 positions l of one half and the four values each
// holds (l, l + 32, l + 64, l + 96), rebuilt four at a time as signed bytes (q − 32).
template <>
struct QUnit<T_Q6_K> {
    static constexpr bool has = true;
    __device__ __forceinline__ static float dot(const uint8_t* row, int u, const int8_t* xq, const float* xd) {
        const uint8_t* b = row + (u >> 3) * 212;
        int j = u & 7, h = j >> 2, l0 = (j & 3) * 8;
        const uint8_t* ql = b + h * 64 + l0;
        const uint8_t* qh = b + 128 + h * 32 + l0;
        const int8_t* sc = (const int8_t*)(b + 192 + h * 8 + (l0 >> 4));
        int base = (u >> 3) * 256 + 128 * h + l0;
        int s[4] = {0, 0, 0, 0};
#pragma unroll
        for (int k = 0; k < 2; k++) {
            uint32_t la = ld32(ql + 4 * k), lb = ld32(ql + 32 + 4 * k), hh = ld32(qh + 4 * k);
            uint32_t v[4] = {
                (la & 0x0f0f0f0fu) | ((hh & 0x03030303u) << 4),
                (lb & 0x0f0f0f0fu) | (((hh >> 2) & 0x03030303u) << 4),
                ((la >> 4) & 0x0f0f0f0fu) | (((hh >> 4) & 0x03030303u) << 4),
                ((lb >> 4) & 0x0f0f0f0fu) | (((hh >> 6) & 0x03030303u) << 4),
            };
#pragma unroll
            for (int i = 0; i < 4; i++) s[i] = __dp4a((int)__vsubss4(v[i], 0x20202020u), ld32i(xq + base + 32 * i + 4 * k), s[i]);
        }
        int xb = base >> 5;
        float acc = 0.f;
#pragma unroll
        for (int i = 0; i < 4; i++) acc += (float)sc[2 * i] * xd[xb + i] * (float)s[i];
        return ldh(b + 208) * acc;
    }
};

// The f32 product units per weight type. Included by kernels.cu after deq.cuh.

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

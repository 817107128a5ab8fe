// Each weight type's blocks back to f32, 32 values at a time. Included by kernels.cu.

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

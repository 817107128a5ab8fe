// The weight type ids (as `repack.rs` numbers them), aligned loads, and the reductions and
// activation the kernels share. Included first by kernels.cu.
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

// CPU GEMM on packed panels (float32): C(b, m, n) = sum_k A(b, m, k) * B(b, k, n).
// ap: A packed as [B][mt][K][MR] (rows past M are zero), bp: B packed as [B][nt][K][NR]
// (columns past N are zero), so the inner loop has no bounds checks and reads both panels
// contiguously. Each work-item owns an MR x NR tile of C held in MR * NR/8 float8
// accumulators (AVX2 registers); `acc += a * b` contracts to FMA (the fma() builtin is
// a library call on PoCL). Neighbouring work-items take neighbouring row tiles of the same
// column panel (it stays in L2). Every size is a kernel argument: one kernel for all GEMMs.
// C's address: (n / P) * sNP + b * sB + m * sM + n % P (a plain matrix: P = N; a
// convolution's (N, O, positions) result: P = positions).
__kernel void KNAME(__global float* c, __global const float* ap, __global const float* bp,
                    const int M, const int N, const int K, const int mt, const int nt,
                    const int P, const int sNP, const int sB, const int sM) {
    const int gid = get_global_id(0);
    if (gid >= $BATCH * mt * nt) return;
    const int im = gid % mt;
    const int t = gid / mt;
    const int jn = t % nt;
    const int b = t / nt;
    __global const float* pa = ap + ((size_t)(b * mt + im) * K) * $MR;
    __global const float8* pb = (__global const float8*)(bp + ((size_t)(b * nt + jn) * K) * $NR);
    $DECL
    for (int k = 0; k < K; ++k) {
        $LOADB
        $BODY
        pa += $MR;
        pb += $NV;
    }
    const int m0 = im * $MR, n0 = jn * $NR;
    if (n0 + $NR <= N && n0 / P == (n0 + $NR - 1) / P) {
        // the tile's columns are one contiguous run of C
        __global float* cb = c + (n0 / P) * sNP + b * sB + n0 % P;
        $STORE_FAST
    } else {
        $STORE_SLOW
    }
}

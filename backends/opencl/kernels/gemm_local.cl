// C(b, m, n) = sum_k A(b, m, k) * B(b, k, n) for b < $B, m < $M, n < $N, k < $K: the GPU GEMM.
// One work-group of 64 work-items per $TS x $TS tile of C. Per step of $TK in k, the group
// loads the A and B tiles it needs into local memory (each element read from global memory
// once per group, zero past the edges: the inner loop has no branches), then each work-item
// multiplies from local memory into its own 4 x 4 block of C in registers (register blocking:
// rows ty + 8 i, columns tx + 8 j, so neighbouring work-items read neighbouring local words).
// k is summed in blocks of $KB into a partial block: shorter float sums, smaller rounding error.
#define A_AT(b, m, k) a[$A_ADDR]
#define B_AT(b, k, n) bm[$B_ADDR]
#define C_AT(b, m, n) c[$C_ADDR]
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void KNAME(__global $T* c, __global const $T* a, __global const $T* bm) {
    __local $T As[$TK][$TS + 1];  // As[k][m]; the +1 column avoids local memory bank conflicts
    __local $T Bs[$TK][$TS + 1];  // Bs[k][n]
    const int lid = get_local_id(0);
    const int grp = get_group_id(0);
    const int tn = grp % $NT;
    const int tm = (grp / $NT) % $MT;
    const int b = grp / ($NT * $MT);
    const int m0 = tm * $TS, n0 = tn * $TS;
    const int tx = lid % 8, ty = lid / 8;
    $T acc[4][4], part[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) { acc[i][j] = ($T)(0); part[i][j] = ($T)(0); }
    for (int k0 = 0; k0 < $K; k0 += $TK) {
        for (int e = lid; e < $TS * $TK; e += 64) {
            const int ka = e % $TK, ma = e / $TK;  // A: k fastest
            const int m = m0 + ma, k = k0 + ka;
            As[ka][ma] = (m < $M && k < $K) ? A_AT(b, m, k) : ($T)(0);
            const int nb = e % $TS, kb = e / $TS;  // B: n fastest
            const int n = n0 + nb, k2 = k0 + kb;
            Bs[kb][nb] = (n < $N && k2 < $K) ? B_AT(b, k2, n) : ($T)(0);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < $TK; ++kk) {
            $T av[4], bv[4];
            for (int i = 0; i < 4; ++i) av[i] = As[kk][ty + 8 * i];
            for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx + 8 * j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) $MAC;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if ((k0 + $TK) % $KB == 0 || k0 + $TK >= $K) {
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) { acc[i][j] += part[i][j]; part[i][j] = ($T)(0); }
        }
    }
    for (int i = 0; i < 4; ++i) {
        const int m = m0 + ty + 8 * i;
        for (int j = 0; j < 4; ++j) {
            const int n = n0 + tx + 8 * j;
            if (m < $M && n < $N) C_AT(b, m, n) = acc[i][j];
        }
    }
}
#undef A_AT
#undef B_AT
#undef C_AT

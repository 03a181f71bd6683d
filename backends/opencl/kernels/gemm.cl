// C(b, m, n) = sum_k A(b, m, k) * B(b, k, n) for b < $B, m < $M, n < $N, k < $K.
// Each work-item computes a $TM x $TN tile of C in registers (register blocking, no local
// memory: on a CPU, PoCL vectorises across neighbouring work-items, which walk along n).
// Loads clamp the row/column so the inner loop has no branches; stores are guarded.
// k is summed in blocks of $KB into a partial tile: shorter float sums, smaller rounding error.
#define A_AT(b, m, k) a[$A_ADDR]
#define B_AT(b, k, n) bm[$B_ADDR]
#define C_AT(b, m, n) c[$C_ADDR]
__kernel void KNAME(__global $T* c, __global const $T* a, __global const $T* bm) {
    const int gid = get_global_id(0);
    if (gid >= $NWI) return;
    const int tn = gid % $NT;
    const int tm = (gid / $NT) % $MT;
    const int b = gid / ($NT * $MT);
    const int m0 = tm * $TM, n0 = tn * $TN;
    int ms[$TM], ns[$TN];
    for (int i = 0; i < $TM; ++i) ms[i] = min(m0 + i, $M - 1);
    for (int j = 0; j < $TN; ++j) ns[j] = min(n0 + j, $N - 1);
    $T acc[$TM][$TN];
    for (int i = 0; i < $TM; ++i)
        for (int j = 0; j < $TN; ++j) acc[i][j] = ($T)(0);
    for (int k0 = 0; k0 < $K; k0 += $KB) {
        const int k1 = min(k0 + $KB, $K);
        $T part[$TM][$TN];
        for (int i = 0; i < $TM; ++i)
            for (int j = 0; j < $TN; ++j) part[i][j] = ($T)(0);
        for (int k = k0; k < k1; ++k) {
            $T av[$TM], bv[$TN];
            for (int i = 0; i < $TM; ++i) av[i] = A_AT(b, ms[i], k);
            for (int j = 0; j < $TN; ++j) bv[j] = B_AT(b, k, ns[j]);
            for (int i = 0; i < $TM; ++i)
                for (int j = 0; j < $TN; ++j) $MAC;
        }
        for (int i = 0; i < $TM; ++i)
            for (int j = 0; j < $TN; ++j) acc[i][j] += part[i][j];
    }
    for (int i = 0; i < $TM; ++i) {
        if (m0 + i >= $M) break;
        for (int j = 0; j < $TN; ++j)
            if (n0 + j < $N) C_AT(b, m0 + i, n0 + j) = acc[i][j];
    }
}
#undef A_AT
#undef B_AT
#undef C_AT

// Pack x(b, r, k) into panels [B][rt][K][$ROWS] for the CPU GEMM (rows past R are zero).
// One work-item per (b, panel, k): it writes $ROWS contiguous elements. Sizes and strides are
// arguments: one kernel for every GEMM operand with this panel height.
__kernel void KNAME(__global float* out, __global const float* x, const int B, const int R,
                    const int K, const int rt, const int off, const int sb, const int sr,
                    const int sk) {
    const int gid = get_global_id(0);
    if (gid >= B * rt * K) return;
    const int k = gid % K;
    const int t = gid / K;
    const int tile = t % rt;
    const int b = t / rt;
    const int r0 = tile * $ROWS;
    __global float* o = out + (size_t)gid * $ROWS;
    const long base = (long)off + (long)b * sb + (long)k * sk;
    if (r0 + $ROWS <= R) {
        for (int i = 0; i < $ROWS; ++i) o[i] = x[base + (long)(r0 + i) * sr];
    } else {
        for (int i = 0; i < $ROWS; ++i) o[i] = r0 + i < R ? x[base + (long)(r0 + i) * sr] : 0.0f;
    }
}

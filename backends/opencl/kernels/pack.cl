// Pack x(b, r, k) into panels [B][rt][K][$ROWS] for the CPU GEMM (rows past R are zero).
// One work-item per (b, k, panel), the panel fastest: it writes $ROWS contiguous elements, and
// neighbouring work-items read neighbouring runs of x when r is x's contiguous dim (the GEMM's
// B operand). Sizes and strides are arguments: one kernel for every GEMM operand with this
// panel height. Every index fits an int (lowering.py checks). k may walk x in two levels:
// k = k1 * K2 + k2 at k1 * sk1 + k2 * sk2 (one level: K2 = K, sk1 = 0).
__kernel void KNAME(__global float* out, __global const float* x, const int B, const int R,
                    const int K, const int rt, const int off, const int sb, const int sr,
                    const int K2, const int sk1, const int sk2) {
    const int gid = get_global_id(0);
    if (gid >= B * rt * K) return;
    const int tile = gid % rt;
    const int t = gid / rt;
    const int k = t % K;
    const int b = t / K;
    const int r0 = tile * $ROWS;
    __global float* o = out + ((b * rt + tile) * K + k) * $ROWS;
    __global const float* src = x + off + b * sb + (k / K2) * sk1 + (k % K2) * sk2 + r0 * sr;
    if (r0 + $ROWS <= R) {
        if (sr == 1) {
            for (int i = 0; i < $ROWS; ++i) o[i] = src[i];
        } else {
            for (int i = 0; i < $ROWS; ++i) o[i] = src[i * sr];
        }
    } else {
        for (int i = 0; i < $ROWS; ++i) o[i] = r0 + i < R ? src[i * sr] : 0.0f;
    }
}

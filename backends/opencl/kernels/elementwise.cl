// A fused elementwise kernel: out[i] from leaves l<j> (operands read through their views:
// broadcasts and transposes are index arithmetic) and one SSA line per fused node.
__kernel void KNAME($PARAMS) {
    const $IDX gid = get_global_id(0);
    if (gid >= $N) return;
    $BODY
}

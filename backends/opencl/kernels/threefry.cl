// Threefry-2x32, 20 rounds (Salmon et al., SC 2011), as funconv/ops/random.py computes it
// in NumPy: the same counters, the same words, bit for bit.
#ifndef FC_THREEFRY
#define FC_THREEFRY
inline uint fc_rotl(uint x, uint r) { return (x << r) | (x >> (32u - r)); }
inline void fc_threefry2x32(uint k0, uint k1, uint* x0, uint* x1) {
    const uint ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
    const uint rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
    uint a = *x0 + ks[0], b = *x1 + ks[1];
    for (int i = 0; i < 5; ++i) {
        for (int r = 0; r < 4; ++r) {
            a += b;
            b = fc_rotl(b, rot[i % 2][r]) ^ a;
        }
        a += ks[(i + 1) % 3];
        b += ks[(i + 2) % 3] + (uint)(i + 1);
    }
    *x0 = a; *x1 = b;
}
// both words of block `c` of stream `tag` (the tag in the top two bits of the high word)
inline void fc_block(__global const int* key, ulong c, uint tag, uint* y0, uint* y1) {
    *y0 = (uint)(c >> 32) | (tag << 30);
    *y1 = (uint)c;
    fc_threefry2x32((uint)key[0], (uint)key[1], y0, y1);
}
#endif

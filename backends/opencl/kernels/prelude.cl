// funconv OpenCL program: one per graph. Helpers shared by the generated kernels.
$FP64

// NaN test of a scalar, inline (PoCL's isnan() is a library call, which also stops its
// vectorizer); exact without -cl-fast-relaxed-math, which funconv never passes.
#define FC_ISNAN(x) ((x) != (x))

// NumPy's floor division and remainder of floats (npy_divmod): the remainder takes the sign
// of the divisor, the quotient is rounded so that q * b + r == a as closely as possible;
// with one operand infinite, floor(a / b) (the Array API's table, funconv's floor_divide).
#define FC_DIVMOD(T) \
inline T fc_rem_##T(T a, T b) { \
    if (b == 0) return fmod(a, b); \
    T m = fmod(a, b); \
    if (m != 0) { if ((b < 0) != (m < 0)) m += b; } else m = copysign((T)0, b); \
    return m; } \
inline T fc_floordiv_##T(T a, T b) { \
    if (b == 0) return a / b; \
    if ((fabs(a) == INFINITY) != (fabs(b) == INFINITY)) return floor(a / b); \
    T m = fmod(a, b); T d = (a - m) / b; \
    if (m != 0 && ((b < 0) != (m < 0))) d -= 1; \
    if (d != 0) { T f = floor(d); if (d - f > (T)0.5) f += 1; return f; } \
    return copysign((T)0, a / b); }
FC_DIVMOD(float)
#ifdef FC_FP64
FC_DIVMOD(double)
#endif

// Integer floor division and remainder as NumPy: rounding toward -inf; x // 0 and x % 0 are 0.
// b == -1 apart: MIN / -1 overflows (a trap on x86); NumPy wraps it to MIN, and MIN % -1 is 0.
#define FC_IDIV(T, U) \
inline T fc_floordiv_##T(T a, T b) { \
    if (b == 0) return 0; \
    if ((T)-1 < 0 && b == (T)-1) return (T)((U)0 - (U)a); \
    T q = a / b; \
    if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1; \
    return q; } \
inline T fc_rem_##T(T a, T b) { \
    if (b == 0 || ((T)-1 < 0 && b == (T)-1)) return 0; \
    T r = a % b; \
    if (r != 0 && ((r < 0) != (b < 0))) r += b; \
    return r; } \
inline T fc_pow_##T(T a, T b) { \
    if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0); \
    T r = 1; \
    while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } \
    return r; }
FC_IDIV(int, uint)
FC_IDIV(long, ulong)
FC_IDIV(uint, uint)
FC_IDIV(ulong, ulong)

// Complex arithmetic on float2/double2 (x: real part, y: imaginary part).
inline float2 fc_cmul_float2(float2 a, float2 b) {
    return (float2)(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x); }
inline float2 fc_cdiv_float2(float2 a, float2 b) {
    float d = b.x * b.x + b.y * b.y;
    return (float2)((a.x * b.x + a.y * b.y) / d, (a.y * b.x - a.x * b.y) / d); }
#ifdef FC_FP64
inline double2 fc_cmul_double2(double2 a, double2 b) {
    return (double2)(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x); }
inline double2 fc_cdiv_double2(double2 a, double2 b) {
    double d = b.x * b.x + b.y * b.y;
    return (double2)((a.x * b.x + a.y * b.y) / d, (a.y * b.x - a.x * b.y) / d); }
#endif

// Vector helpers shared by the kernels: SIMD16 loads and stores at any alignment (with a partial
// form for the tail of a row), and polynomial exp / sigmoid / erfc that vectorise.
//
// Foundation's expf is a per-lane library call; in the softmax, GELU and SiLU loops it would take
// most of the time. `vexp` below is a Cephes-style expf: split x = n·ln2 + r with |r| ≤ ln2/2,
// evaluate a degree-6 polynomial for e^r, scale by 2^n through the exponent bits. Relative error
// is about 1e-7 (2 ulp) over the whole float range (see SoftmaxTests.testVectorExpMatchesFoundation).
//
// Notes for this machine (Swift 6.3, -Ounchecked -target-cpu haswell): `pointwiseMin/Max`,
// `.clamped` and prefix `-` on SIMD16<Float> compile to per-lane code, so the code below uses
// `replacing(with:where:)` and `0 - x` instead. `addingProduct` compiles to vfmadd.
// `@inline(__always)` does not reliably inline here: a closure passed to a loop helper stayed a
// call per 16 elements (and identical loops were merged into one taking a function pointer),
// which made GELU 2-3x slower. The vector functions and loop helpers are therefore
// `@_transparent`, and kernels pass named `@_transparent` functions, not closures, to them.

typealias F16 = SIMD16<Float>

// MARK: loads and stores

/// 16 floats from `p` (any alignment).
@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

/// 16 floats to `p` (any alignment).
@inline(__always)
func store16(_ p: UnsafeMutablePointer<Float>, _ v: F16) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

/// The first `n` (< 16) floats from `p`; the other lanes are `fill`.
@inline(__always)
func load16(_ p: UnsafePointer<Float>, count n: Int, fill: Float) -> F16 {
    var v = F16(repeating: fill)
    for i in 0..<n { v[i] = p[i] }
    return v
}

/// Stores the first `n` (< 16) lanes of `v` to `p`.
@inline(__always)
func store16(_ p: UnsafeMutablePointer<Float>, _ v: F16, count n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

// MARK: exp, sigmoid, erfc

/// a·b + c with one rounding (vfmadd on this target).
@_transparent
func fma(_ a: F16, _ b: F16, _ c: F16) -> F16 { c.addingProduct(a, b) }

/// Largest argument whose exponent n = round(x / ln2) still fits a normal float (n ≤ 127).
let expUpperLimit: Float = 88.3762626647949
/// Below this, e^x is flushed to zero (n = -127 yields a zero scale).
let expLowerLimit: Float = -88.3762626647949

/// e^x for 16 lanes. Inputs above 88.376 give e^88.376 (≈ 2.4e38, not inf); inputs below
/// -88.376 (and -inf) give 0; NaN gives NaN.
@_transparent
func vexp(_ x: F16) -> F16 {
    var x = x
    x = x.replacing(with: expUpperLimit, where: x .> expUpperLimit)
    x = x.replacing(with: expLowerLimit, where: x .< expLowerLimit)
    // n = round(x / ln2): adding 1.5·2^23 rounds to an integer held in the low mantissa bits.
    let magic = F16(repeating: 12582912)
    let t = fma(x, F16(repeating: 1.44269504088896341), magic)
    let n = t - magic
    // r = x - n·ln2, with ln2 split in two so that n·hi is exact.
    var r = fma(n, F16(repeating: -0.693359375), x)
    r = fma(n, F16(repeating: 2.12194440e-4), r)
    // e^r on |r| ≤ 0.347 (Cephes expf coefficients).
    var p = F16(repeating: 1.9875691500e-4)
    p = fma(p, r, F16(repeating: 1.3981999507e-3))
    p = fma(p, r, F16(repeating: 8.3334519073e-3))
    p = fma(p, r, F16(repeating: 4.1665795894e-2))
    p = fma(p, r, F16(repeating: 1.6666665459e-1))
    p = fma(p, r, F16(repeating: 5.0000001201e-1))
    let er = fma(p, r * r, r) + F16(repeating: 1)
    // 2^n from the exponent field: ((n + 127) << 23); the low bits of t hold n + 2^22.
    let nBits = unsafeBitCast(t, to: SIMD16<UInt32>.self) &- SIMD16<UInt32>(repeating: 0x4B40_0000)
    let scale = unsafeBitCast((nBits &+ SIMD16<UInt32>(repeating: 127)) &<< SIMD16<UInt32>(repeating: 23), to: F16.self)
    return er * scale
}

/// 1 / (1 + e^-x) for 16 lanes.
@_transparent
func vsigmoid(_ x: F16) -> F16 {
    F16(repeating: 1) / (F16(repeating: 1) + vexp(F16(repeating: 0) - x))
}

/// σ(x) and 1 - σ(x) for 16 lanes. 1 - σ(x) is computed as e^-x·σ(x), not by subtraction,
/// which would lose all its digits when σ(x) is close to 1 (derivatives need s·(1 - s)).
@_transparent
func vsigmoidAndComplement(_ x: F16) -> (s: F16, oneMinusS: F16) {
    let e = vexp(F16(repeating: 0) - x)
    let s = F16(repeating: 1) / (F16(repeating: 1) + e)
    return (s, e * s)
}

/// erfc(x) for 16 lanes, x ≥ 0 or not: the Chebyshev-fitted form erfc(z) = t·exp(-z² + P(t)),
/// t = 1/(1 + z/2) for z = |x| (fractional error < 1.2e-7), reflected as 2 - erfc(|x|) for x < 0.
@_transparent
func verfc(_ x: F16) -> F16 {
    let negative = x .< F16(repeating: 0)
    let z = x.replacing(with: 0 - x, where: negative)
    let t = F16(repeating: 1) / (F16(repeating: 1) + F16(repeating: 0.5) * z)
    var p = F16(repeating: 0.17087277)
    p = fma(p, t, F16(repeating: -0.82215223))
    p = fma(p, t, F16(repeating: 1.48851587))
    p = fma(p, t, F16(repeating: -1.13520398))
    p = fma(p, t, F16(repeating: 0.27886807))
    p = fma(p, t, F16(repeating: -0.18628806))
    p = fma(p, t, F16(repeating: 0.09678418))
    p = fma(p, t, F16(repeating: 0.37409196))
    p = fma(p, t, F16(repeating: 1.00002368))
    p = fma(p, t, F16(repeating: -1.26551223))
    let e = t * vexp(fma(z, 0 - z, p))   // -z² + P(t), the square unrounded
    return e.replacing(with: F16(repeating: 2) - e, where: negative)
}

/// Applies `body` to `n` floats from `x` in blocks of 16 and writes the results to `y`
/// (the tail goes through a partial load/store, so every element takes the same code path).
/// `y` may equal `x`. Pass a named `@_transparent` function so that it inlines.
@_transparent
func map16(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, _ body: (F16) -> F16) {
    var i = 0
    while i + 16 <= n {
        store16(y + i, body(load16(x + i)))
        i += 16
    }
    if i < n { store16(y + i, body(load16(x + i, count: n - i, fill: 0)), count: n - i) }
}

/// Like `map16` with two inputs.
@_transparent
func map16(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int,
           _ body: (F16, F16) -> F16) {
    var i = 0
    while i + 16 <= n {
        store16(y + i, body(load16(a + i), load16(b + i)))
        i += 16
    }
    if i < n {
        let m = n - i
        store16(y + i, body(load16(a + i, count: m, fill: 0), load16(b + i, count: m, fill: 0)), count: m)
    }
}

/// Sum of `n` floats (16 lanes of partial sums).
@inline(__always)
func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = F16(repeating: 0)
    var i = 0
    while i + 16 <= n { acc += load16(x + i); i += 16 }
    if i < n { acc += load16(x + i, count: n - i, fill: 0) }
    return acc.sum()
}

/// Maximum of `n` floats (n ≥ 1); -inf for n = 0.
@inline(__always)
func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = F16(repeating: -.infinity)
    var i = 0
    while i + 16 <= n {
        let v = load16(x + i)
        acc = acc.replacing(with: v, where: v .> acc)
        i += 16
    }
    if i < n {
        let v = load16(x + i, count: n - i, fill: -.infinity)
        acc = acc.replacing(with: v, where: v .> acc)
    }
    var m = acc[0]
    for j in 1..<16 where acc[j] > m { m = acc[j] }
    return m
}

// MARK: checks

/// Whether all `count` floats at `p` are finite (no NaN, no ±infinity): x·0 is 0 for every finite
/// x and NaN otherwise, so one multiply-add per element and a test per 16 lanes (a load-time scan
/// of every weight, ~0.1 s per GB).
public func allFinite(_ p: UnsafePointer<Float>, count n: Int) -> Bool {
    var acc = F16(repeating: 0)
    var i = 0
    while i + 16 <= n {
        acc = acc.addingProduct(load16(p + i), F16(repeating: 0))
        i += 16
    }
    var tail: Float = 0
    while i < n { tail += p[i] * 0; i += 1 }
    return acc.sum() == 0 && tail == 0
}

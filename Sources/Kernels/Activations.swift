// Activations: elementwise functions and their derivatives, 16 lanes at a time.
//
// Legend:
//   N  elements
//
// Forwards overwrite y and may run in place (y == x). Backwards add dy · f'(x) into dx (+=).
// All use the polynomial exp in VectorMath.swift; GELU-erf uses a polynomial erfc.
// Each function is written once for 16 lanes (`@_transparent`, so that it inlines into the
// loops of `map16`/`accumulate16`: a closure there would be called once per 16 elements).

// MARK: GELU, tanh approximation (SigLIP, `gelu_pytorch_tanh`, F.gelu(approximate: "tanh"))
//
// gelu(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³). Since 0.5·(1 + tanh(u)) = σ(2u),
// it is computed as x·σ(2u), which avoids 1 - 2/(e^{2u}+1) cancelling for small u.
// d/dx = σ(2u) + x·2σ(2u)(1 - σ(2u))·√(2/π)·(1 + 3·0.044715·x²), with 1 - σ computed without
// cancellation (see `vsigmoidAndComplement`).

let sqrtTwoOverPi: Float = 0.7978845608028654
let geluCubic: Float = 0.044715

@_transparent
func geluTanh(_ x: F16) -> F16 {
    x * vsigmoid(F16(repeating: 2 * sqrtTwoOverPi) * fma(F16(repeating: geluCubic) * x, x * x, x))
}

@_transparent
func geluTanhDerivative(_ x: F16) -> F16 {
    let x2 = x * x
    let (s, sc) = vsigmoidAndComplement(F16(repeating: 2 * sqrtTwoOverPi) * fma(F16(repeating: geluCubic) * x, x2, x))
    let du = F16(repeating: sqrtTwoOverPi) * fma(F16(repeating: 3 * geluCubic), x2, F16(repeating: 1))
    return fma(x * F16(repeating: 2) * s * sc, du, s)
}

/// y(N) = gelu_tanh(x(N)).
public func geluTanhForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N, geluTanh)
}

/// dx(N) += dy(N) · gelu_tanh'(x(N)).
public func geluTanhBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N, geluTanhDerivative)
}

// MARK: GELU, exact (DINOv2, nn.GELU() default)
//
// gelu(x) = x·Φ(x) = 0.5·x·erfc(-x/√2);  d/dx = Φ(x) + x·φ(x), φ(x) = e^{-x²/2}/√(2π).

let invSqrt2: Float = 0.7071067811865476
let invSqrt2Pi: Float = 0.3989422804014327

@_transparent
func geluErf(_ x: F16) -> F16 {
    F16(repeating: 0.5) * x * verfc(x * F16(repeating: -invSqrt2))
}

@_transparent
func geluErfDerivative(_ x: F16) -> F16 {
    let cdf = F16(repeating: 0.5) * verfc(x * F16(repeating: -invSqrt2))
    let pdf = F16(repeating: invSqrt2Pi) * vexp(F16(repeating: -0.5) * x * x)
    return fma(x, pdf, cdf)
}

/// y(N) = x·Φ(x), the exact erf GELU.
public func geluErfForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N, geluErf)
}

/// dx(N) += dy(N) · (Φ(x) + x·φ(x)).
public func geluErfBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N, geluErfDerivative)
}

// MARK: QuickGELU (OpenAI CLIP)
//
// y = x·σ(1.702·x);  d/dx = s + 1.702·x·s·(1 - s), s = σ(1.702·x).

let quickGeluSlope: Float = 1.702

@_transparent
func quickGelu(_ x: F16) -> F16 {
    x * vsigmoid(F16(repeating: quickGeluSlope) * x)
}

@_transparent
func quickGeluDerivative(_ x: F16) -> F16 {
    let (s, sc) = vsigmoidAndComplement(F16(repeating: quickGeluSlope) * x)
    return fma(F16(repeating: quickGeluSlope) * x, s * sc, s)
}

/// y(N) = x·σ(1.702·x).
public func quickGeluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N, quickGelu)
}

/// dx(N) += dy(N) · quickgelu'(x(N)).
public func quickGeluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N, quickGeluDerivative)
}

// MARK: SiLU and SwiGLU (Llama MLP)
//
// silu(x) = x·σ(x);  d/dx = s·(1 + x·(1 - s)), s = σ(x).

@_transparent
func silu(_ x: F16) -> F16 {
    x * vsigmoid(x)
}

@_transparent
func siluDerivative(_ x: F16) -> F16 {
    let (s, sc) = vsigmoidAndComplement(x)
    return s * fma(x, sc, F16(repeating: 1))
}

@_transparent
func swiglu(_ gate: F16, _ up: F16) -> F16 {
    silu(gate) * up
}

@_transparent
func add(_ a: F16, _ b: F16) -> F16 {
    a + b
}

/// y(N) = x·σ(x).
public func siluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N, silu)
}

/// dx(N) += dy(N) · silu'(x(N)).
public func siluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N, siluDerivative)
}

/// y(N) = silu(gate(N)) · up(N), the Llama MLP's gating. y may alias gate or up.
public func swigluForward(_ y: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, N: Int) {
    map16(y, gate, up, N, swiglu)
}

/// dgate(N) += dy · up · silu'(gate);  dup(N) += dy · silu(gate).
public func swigluBackward(_ dgate: UnsafeMutablePointer<Float>, _ dup: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                           _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, N: Int) {
    var i = 0
    while i < N {
        let m = min(16, N - i)
        let full = m == 16
        let g = full ? load16(gate + i) : load16(gate + i, count: m, fill: 0)
        let u = full ? load16(up + i) : load16(up + i, count: m, fill: 0)
        let d = full ? load16(dy + i) : load16(dy + i, count: m, fill: 0)
        let dg0 = full ? load16(dgate + i) : load16(dgate + i, count: m, fill: 0)
        let du0 = full ? load16(dup + i) : load16(dup + i, count: m, fill: 0)
        let (s, sc) = vsigmoidAndComplement(g)
        let dg = fma(d * u, s * fma(g, sc, F16(repeating: 1)), dg0)
        let du = fma(d, g * s, du0)
        if full {
            store16(dgate + i, dg)
            store16(dup + i, du)
        } else {
            store16(dgate + i, dg, count: m)
            store16(dup + i, du, count: m)
        }
        i += 16
    }
}

// MARK: residual add

/// y(N) = a(N) + b(N). y may alias a or b.
public func addForward(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, N: Int) {
    map16(y, a, b, N, add)
}

// MARK: helpers

/// dx(n) += dy(n) · derivative(x(n)), 16 lanes at a time.
@_transparent
func accumulate16(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int,
                  _ derivative: (F16) -> F16) {
    var i = 0
    while i + 16 <= n {
        store16(dx + i, fma(load16(dy + i), derivative(load16(x + i)), load16(dx + i)))
        i += 16
    }
    if i < n {
        let m = n - i
        let g = fma(load16(dy + i, count: m, fill: 0), derivative(load16(x + i, count: m, fill: 0)), load16(dx + i, count: m, fill: 0))
        store16(dx + i, g, count: m)
    }
}

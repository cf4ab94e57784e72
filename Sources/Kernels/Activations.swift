// Activations: elementwise functions and their derivatives, 16 lanes at a time.
//
// Legend:
//   N  elements
//
// Forwards overwrite y and may run in place (y == x). Backwards add dy · f'(x) into dx (+=).
// All use the polynomial exp in VectorMath.swift; GELU-erf uses a polynomial erfc.

// MARK: GELU, tanh approximation (SigLIP, `gelu_pytorch_tanh`, F.gelu(approximate: "tanh"))
//
// gelu(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³). Since 0.5·(1 + tanh(u)) = σ(2u),
// it is computed as x·σ(2u), which avoids 1 - 2/(e^{2u}+1) cancelling for small u.
// d/dx = σ(2u) + x·2σ(2u)(1 - σ(2u))·√(2/π)·(1 + 3·0.044715·x²), with 1 - σ computed without
// cancellation (see `vsigmoidAndComplement`).

private let sqrtTwoOverPi: Float = 0.7978845608028654
private let geluCubic: Float = 0.044715

/// y(N) = gelu_tanh(x(N)).
public func geluTanhForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N) { x in
        let u2 = F16(repeating: 2 * sqrtTwoOverPi) * (x + F16(repeating: geluCubic) * x * x * x)
        return x * vsigmoid(u2)
    }
}

/// dx(N) += dy(N) · gelu_tanh'(x(N)).
public func geluTanhBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N) { x in
        let x2 = x * x
        let (s, sc) = vsigmoidAndComplement(F16(repeating: 2 * sqrtTwoOverPi) * (x + F16(repeating: geluCubic) * x2 * x))
        let du = F16(repeating: sqrtTwoOverPi) * (F16(repeating: 1) + F16(repeating: 3 * geluCubic) * x2)
        return s + x * F16(repeating: 2) * s * sc * du
    }
}

// MARK: GELU, exact (DINOv2, nn.GELU() default)
//
// gelu(x) = x·Φ(x) = 0.5·x·erfc(-x/√2);  d/dx = Φ(x) + x·φ(x), φ(x) = e^{-x²/2}/√(2π).

private let invSqrt2: Float = 0.7071067811865476
private let invSqrt2Pi: Float = 0.3989422804014327

/// y(N) = x·Φ(x), the exact erf GELU.
public func geluErfForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N) { x in
        F16(repeating: 0.5) * x * verfc(F16(repeating: 0) - x * F16(repeating: invSqrt2))
    }
}

/// dx(N) += dy(N) · (Φ(x) + x·φ(x)).
public func geluErfBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N) { x in
        let cdf = F16(repeating: 0.5) * verfc(F16(repeating: 0) - x * F16(repeating: invSqrt2))
        let pdf = F16(repeating: invSqrt2Pi) * vexp(F16(repeating: -0.5) * x * x)
        return cdf + x * pdf
    }
}

// MARK: QuickGELU (OpenAI CLIP)
//
// y = x·σ(1.702·x);  d/dx = s + 1.702·x·s·(1 - s), s = σ(1.702·x).

private let quickGeluSlope: Float = 1.702

/// y(N) = x·σ(1.702·x).
public func quickGeluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N) { x in x * vsigmoid(F16(repeating: quickGeluSlope) * x) }
}

/// dx(N) += dy(N) · quickgelu'(x(N)).
public func quickGeluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N) { x in
        let (s, sc) = vsigmoidAndComplement(F16(repeating: quickGeluSlope) * x)
        return s + F16(repeating: quickGeluSlope) * x * s * sc
    }
}

// MARK: SiLU and SwiGLU (Llama MLP)
//
// silu(x) = x·σ(x);  d/dx = s·(1 + x·(1 - s)), s = σ(x).

/// y(N) = x·σ(x).
public func siluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    map16(y, x, N) { x in x * vsigmoid(x) }
}

/// dx(N) += dy(N) · silu'(x(N)).
public func siluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    accumulate16(dx, dy, x, N) { x in
        let (s, sc) = vsigmoidAndComplement(x)
        return s * (F16(repeating: 1) + x * sc)
    }
}

/// y(N) = silu(gate(N)) · up(N), the Llama MLP's gating. y may alias gate or up.
public func swigluForward(_ y: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, N: Int) {
    map16(y, gate, up, N) { g, u in g * vsigmoid(g) * u }
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
        let silu = g * s
        let dg = dg0 + d * u * s * (F16(repeating: 1) + g * sc)
        let du = du0 + d * silu
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
    map16(y, a, b, N) { a, b in a + b }
}

// MARK: helpers

/// dx(n) += dy(n) · derivative(x(n)), 16 lanes at a time.
@inline(__always)
private func accumulate16(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int,
                          _ derivative: (F16) -> F16) {
    var i = 0
    while i + 16 <= n {
        store16(dx + i, load16(dx + i) + load16(dy + i) * derivative(load16(x + i)))
        i += 16
    }
    if i < n {
        let m = n - i
        let g = load16(dx + i, count: m, fill: 0)
            + load16(dy + i, count: m, fill: 0) * derivative(load16(x + i, count: m, fill: 0))
        store16(dx + i, g, count: m)
    }
}

// Softmax over the last axis, row by row.
//
// Legend:
//   R  rows
//   C  columns (the axis that sums to one)
//
// Forwards overwrite y and may run in place (y == x); the backward adds (+=) into dx.
// Each row subtracts its maximum before exponentiating, so large logits do not overflow.

import Foundation

/// y(R,C) = softmax(x(R,C)) along C.
public func softmaxForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, R: Int, C: Int) {
    for r in 0..<R { softmaxRow(y + r * C, x + r * C, C) }
}

/// dx(R,C) += y · (dy - Σ_c dy·y), the softmax gradient given its output y.
public func softmaxBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>, R: Int, C: Int) {
    for r in 0..<R {
        let dyr = dy + r * C, yr = y + r * C, dxr = dx + r * C   // (C)
        let dot = F16(repeating: dotRow(dyr, yr, C))
        var i = 0
        while i + 16 <= C {
            let yv = load16(yr + i)
            store16(dxr + i, load16(dxr + i) + yv * (load16(dyr + i) - dot))
            i += 16
        }
        let d = dot[0]
        for j in i..<C { dxr[j] += yr[j] * (dyr[j] - d) }
    }
}

/// y(R,C) = log softmax(x(R,C)) = x - max - log Σ exp(x - max), along C.
public func logSoftmax(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, R: Int, C: Int) {
    for r in 0..<R {
        let xr = x + r * C, yr = y + r * C   // (C)
        let shift = F16(repeating: logSumExp(xr, C))
        var i = 0
        while i + 16 <= C { store16(yr + i, load16(xr + i) - shift); i += 16 }
        if i < C { store16(yr + i, load16(xr + i, count: C - i, fill: 0) - shift, count: C - i) }
    }
}

// MARK: row helpers (also used by attention and cross-entropy)

/// y(n) = softmax(x(n)); y may equal x. n = 0 is a no-op.
@inline(__always)
func softmaxRow(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    guard n > 0 else { return }
    let mv = F16(repeating: rowMax(x, n))
    var acc = F16(repeating: 0)
    var i = 0
    while i + 16 <= n {
        let e = vexp(load16(x + i) - mv)
        store16(y + i, e)
        acc += e
        i += 16
    }
    if i < n {
        // Padding lanes hold -inf, whose exp is 0: they do not add to the sum.
        let e = vexp(load16(x + i, count: n - i, fill: -.infinity) - mv)
        store16(y + i, e, count: n - i)
        acc += e
    }
    let inv = F16(repeating: 1 / acc.sum())
    i = 0
    while i + 16 <= n { store16(y + i, load16(y + i) * inv); i += 16 }
    if i < n { store16(y + i, load16(y + i, count: n - i, fill: 0) * inv, count: n - i) }
}

/// log Σ exp(x(n)), computed as max + log Σ exp(x - max).
@inline(__always)
func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let m = rowMax(x, n)
    let mv = F16(repeating: m)
    var acc = F16(repeating: 0)
    var i = 0
    while i + 16 <= n { acc += vexp(load16(x + i) - mv); i += 16 }
    if i < n { acc += vexp(load16(x + i, count: n - i, fill: -.infinity) - mv) }
    return m + Foundation.log(acc.sum())
}

/// Σ a(n)·b(n).
@inline(__always)
func dotRow(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = F16(repeating: 0)
    var i = 0
    while i + 16 <= n { acc += load16(a + i) * load16(b + i); i += 16 }
    if i < n { acc += load16(a + i, count: n - i, fill: 0) * load16(b + i, count: n - i, fill: 0) }
    return acc.sum()
}

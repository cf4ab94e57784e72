// Scaled dot-product attention with grouped-query heads, a causal mask and a KV-cache offset.
//
// Legend:
//   T    queries (tokens of this call)
//   S    keys/values (the first S rows of the KV cache)
//   Hq   query heads
//   Hkv  key/value heads; Hq % Hkv == 0, query head h reads kv head h / (Hq / Hkv)
//   D    head size
//
// Layouts are row-major: q and out (T, Hq, D); k and v (S, Hkv, D); probs (Hq, T, S).
// One head's rows are strided views (stride Hq·D or Hkv·D), which BLAS reads directly through
// its leading dimension, so nothing is gathered:
//   scores(T, S) = scale · Q_h(T, D) · K_g(S, D)ᵀ       sgemm (sgemv when T == 1)
//   P = softmax of each row over the keys it may see
//   out_h(T, D) = P(T, S) · V_g(S, D)                   sgemm (sgemv when T == 1)
// Causal: query t sits at absolute position qOffset + t and sees keys 0...qOffset + t. No query
// sees keys at or past qOffset + T, so the products only run over those first Sv = qOffset + T
// keys (Sv = S when not causal).
//
// The forward overwrites out (and probs); the backward adds (+=) into dq, dk, dv.

import CBLAS
import Foundation

/// Floats of workspace `attentionForward` and `attentionBackward` need for one head's (T, S)
/// score matrix. A caller that passes `workspace` of this size makes both calls allocation-free.
/// (The forward with T == 1 and no probs only needs `scratch` of S floats instead.)
public func attentionWorkspaceSize(T: Int, S: Int, Hq: Int, Hkv: Int, D: Int) -> Int { T * S }

/// out(T, Hq, D) = softmax(scale · q·kᵀ + mask) · v, per query head.
///
/// - q: (T, Hq, D); k, v: (S, Hkv, D). A KV cache of capacity ≥ S may be passed as its base
///   pointer: only the first S rows are read.
/// - causal: query t sits at position qOffset + t and attends keys 0...qOffset + t; requires
///   qOffset + T ≤ S. Non-causal: every query attends all S keys (qOffset is ignored).
/// - scale: defaults to 1/√D.
/// - probs: when non-nil, (Hq, T, S) attention probabilities are stored for the backward,
///   with masked entries 0.
/// - scratch: (S) floats for the score row when probs is nil and T == 1 (one decoding step),
///   so that the step allocates nothing.
/// - workspace: `attentionWorkspaceSize(...)` floats for the (T, S) scores when probs is nil
///   and T > 1. When it is needed and nil, the call allocates it (once per call).
public func attentionForward(_ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>?,
                             _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                             T: Int, S: Int, Hq: Int, Hkv: Int, D: Int, causal: Bool, qOffset: Int = 0,
                             scale: Float? = nil, scratch: UnsafeMutablePointer<Float>? = nil,
                             workspace: UnsafeMutablePointer<Float>? = nil) {
    precondition(Hkv > 0 && Hq % Hkv == 0, "attention: Hq (\(Hq)) must be a multiple of Hkv (\(Hkv))")
    precondition(!causal || qOffset + T <= S, "attention: qOffset (\(qOffset)) + T (\(T)) exceeds S (\(S))")
    guard T > 0, Hq > 0, D > 0 else { return }
    guard S > 0 else {
        out.update(repeating: 0, count: T * Hq * D)
        return
    }
    let scale = scale ?? 1 / Float(D).squareRoot()
    let group = Hq / Hkv
    let ldq = Hq * D, ldkv = Hkv * D
    let sv = causal ? qOffset + T : S              // keys any query can see

    // Where one head's score rows (row stride S) live when probs is nil.
    var owned: UnsafeMutablePointer<Float>? = nil
    var work: UnsafeMutablePointer<Float>? = workspace
    if probs == nil && work == nil {
        if T == 1, let scratch {
            work = scratch
        } else {
            owned = .allocate(capacity: T * S)
            work = owned
        }
    }
    defer { owned?.deallocate() }

    for h in 0..<Hq {
        let g = h / group
        let qh = q + h * D, kg = k + g * D, vg = v + g * D, oh = out + h * D   // strided (T|S, D) views
        let p = probs.map { $0 + h * T * S } ?? work!                           // (T, S)
        if T == 1 {
            // scores(Sv) = scale · K_g(Sv, D) · q_h(D)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(sv), blasint(D), scale, kg, blasint(ldkv),
                        qh, 1, 0, p, 1)
        } else {
            // scores(T, Sv) = scale · Q_h(T, D) · K_g(Sv, D)ᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(sv), blasint(D),
                        scale, qh, blasint(ldq), kg, blasint(ldkv), 0, p, blasint(S))
        }
        for t in 0..<T {
            let row = p + t * S                                                 // (S)
            let visible = causal ? qOffset + t + 1 : S
            softmaxRow(row, row, visible)
            // Masked keys get probability 0 (the whole row when stored, else up to Sv for P·V).
            let end = probs == nil ? sv : S
            if visible < end { (row + visible).update(repeating: 0, count: end - visible) }
        }
        if T == 1 {
            // out_h(D) = V_g(Sv, D)ᵀ · p(Sv)
            cblas_sgemv(CblasRowMajor, CblasTrans, blasint(sv), blasint(D), 1, vg, blasint(ldkv),
                        p, 1, 0, oh, 1)
        } else {
            // out_h(T, D) = P(T, Sv) · V_g(Sv, D)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(T), blasint(D), blasint(sv),
                        1, p, blasint(S), vg, blasint(ldkv), 0, oh, blasint(ldq))
        }
    }
}

/// Backward of `attentionForward`, given the probs (Hq, T, S) it stored:
/// dq(T, Hq, D) += ∂L/∂q, dk(S, Hkv, D) += ∂L/∂k, dv(S, Hkv, D) += ∂L/∂v, from dout(T, Hq, D).
/// Query heads that share a kv head add their contributions into the same dk/dv rows.
///
/// Per head, with dS = P ⊙ (dP - rowsum(dP ⊙ P)) the softmax gradient:
///   dV_g += Pᵀ·dout_h,  dP = dout_h·V_gᵀ,  dQ_h += scale·dS·K_g,  dK_g += scale·dSᵀ·Q_h.
/// workspace: `attentionWorkspaceSize(...)` floats for dP/dS; allocated once per call when nil.
public func attentionBackward(_ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>,
                              _ dv: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                              _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                              _ probs: UnsafePointer<Float>, T: Int, S: Int, Hq: Int, Hkv: Int, D: Int,
                              causal: Bool, qOffset: Int = 0, scale: Float? = nil,
                              workspace: UnsafeMutablePointer<Float>? = nil) {
    precondition(Hkv > 0 && Hq % Hkv == 0, "attention: Hq (\(Hq)) must be a multiple of Hkv (\(Hkv))")
    precondition(!causal || qOffset + T <= S, "attention: qOffset (\(qOffset)) + T (\(T)) exceeds S (\(S))")
    guard T > 0, S > 0, Hq > 0, D > 0 else { return }
    let scale = scale ?? 1 / Float(D).squareRoot()
    let group = Hq / Hkv
    let ldq = Hq * D, ldkv = Hkv * D
    let sv = causal ? qOffset + T : S

    let owned: UnsafeMutablePointer<Float>? = workspace == nil ? .allocate(capacity: T * S) : nil
    defer { owned?.deallocate() }
    let ds = workspace ?? owned!                                                // (T, S): dP, then dS

    for h in 0..<Hq {
        let g = h / group
        let qh = q + h * D, kg = k + g * D, vg = v + g * D                      // strided views
        let doh = dout + h * D, dqh = dq + h * D, dkg = dk + g * D, dvg = dv + g * D
        let p = probs + h * T * S                                               // (T, S)
        // dV_g(Sv, D) += P(T, Sv)ᵀ · dout_h(T, D)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(sv), blasint(D), blasint(T),
                    1, p, blasint(S), doh, blasint(ldq), 1, dvg, blasint(ldkv))
        // dP(T, Sv) = dout_h(T, D) · V_g(Sv, D)ᵀ
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(sv), blasint(D),
                    1, doh, blasint(ldq), vg, blasint(ldkv), 0, ds, blasint(S))
        // dS = P ⊙ (dP - Σ dP ⊙ P), row by row; masked entries have P = 0 and stay 0.
        for t in 0..<T {
            let pr = p + t * S, dr = ds + t * S                                 // (S)
            let visible = causal ? qOffset + t + 1 : S
            let dot = dotRow(dr, pr, visible)
            for j in 0..<visible { dr[j] = pr[j] * (dr[j] - dot) }
            if visible < sv { (dr + visible).update(repeating: 0, count: sv - visible) }
        }
        // dQ_h(T, D) += scale · dS(T, Sv) · K_g(Sv, D)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(T), blasint(D), blasint(sv),
                    scale, ds, blasint(S), kg, blasint(ldkv), 1, dqh, blasint(ldq))
        // dK_g(Sv, D) += scale · dS(T, Sv)ᵀ · Q_h(T, D)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(sv), blasint(D), blasint(T),
                    scale, ds, blasint(S), qh, blasint(ldq), 1, dkg, blasint(ldkv))
    }
}

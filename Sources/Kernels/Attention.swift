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
// Causal: query t sits at absolute position qOffset + t and sees keys 0...qOffset + t. The
// queries go in blocks of 64 rows, and a block's products run only over the keys its last row
// may see (qOffset + t1), which skips most of the masked triangle of a prefill; the few masked
// entries left inside a block are set to probability 0. Non-causal: one block, all S keys.
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
    let blockRows = causal ? causalBlockRows : T

    for h in 0..<Hq {
        let g = h / group
        let qh = q + h * D, kg = k + g * D, vg = v + g * D, oh = out + h * D   // strided (T|S, D) views
        let p = probs.map { $0 + h * T * S } ?? work!                           // (T, S)
        for t0 in stride(from: 0, to: T, by: blockRows) {
            let t1 = min(t0 + blockRows, T), rows = t1 - t0
            let kv = causal ? qOffset + t1 : S                                  // keys these rows may see
            let pb = p + t0 * S                                                 // (rows, S)
            if rows == 1 {
                // scores(kv) = scale · K_g(kv, D) · q_h(D)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(kv), blasint(D), scale, kg, blasint(ldkv),
                            qh + t0 * ldq, 1, 0, pb, 1)
            } else {
                // scores(rows, kv) = scale · Q_h(rows, D) · K_g(kv, D)ᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(rows), blasint(kv), blasint(D),
                            scale, qh + t0 * ldq, blasint(ldq), kg, blasint(ldkv), 0, pb, blasint(S))
            }
            for t in t0..<t1 {
                let row = p + t * S                                             // (S)
                let visible = causal ? qOffset + t + 1 : S
                softmaxRow(row, row, visible)
                // Masked keys get probability 0: the whole row when stored, else up to kv for P·V.
                let end = probs == nil ? kv : S
                if visible < end { (row + visible).update(repeating: 0, count: end - visible) }
            }
            if rows == 1 {
                // out_h(D) = V_g(kv, D)ᵀ · p(kv)
                cblas_sgemv(CblasRowMajor, CblasTrans, blasint(kv), blasint(D), 1, vg, blasint(ldkv),
                            pb, 1, 0, oh + t0 * ldq, 1)
            } else {
                // out_h(rows, D) = P(rows, kv) · V_g(kv, D)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(rows), blasint(D), blasint(kv),
                            1, pb, blasint(S), vg, blasint(ldkv), 0, oh + t0 * ldq, blasint(ldq))
            }
        }
    }
}

/// Query rows per block in the causal case: a block's products run only over the keys its last
/// row may see, which skips most of the masked upper triangle of a prefill. Non-causal calls
/// take all T rows at once.
let causalBlockRows = 64

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
    let owned: UnsafeMutablePointer<Float>? = workspace == nil ? .allocate(capacity: T * S) : nil
    defer { owned?.deallocate() }
    let ds = workspace ?? owned!                                                // (T, S): dP, then dS
    let blockRows = causal ? causalBlockRows : T

    for h in 0..<Hq {
        let g = h / group
        let qh = q + h * D, kg = k + g * D, vg = v + g * D                      // strided views
        let doh = dout + h * D, dqh = dq + h * D, dkg = dk + g * D, dvg = dv + g * D
        let p = probs + h * T * S                                               // (T, S)
        for t0 in stride(from: 0, to: T, by: blockRows) {
            let t1 = min(t0 + blockRows, T), rows = t1 - t0
            let kv = causal ? qOffset + t1 : S                                  // keys these rows may see
            let pb = p + t0 * S, db = ds + t0 * S                               // (rows, S)
            let qb = qh + t0 * ldq, dob = doh + t0 * ldq, dqb = dqh + t0 * ldq  // (rows, D) views
            // dV_g(kv, D) += P(rows, kv)ᵀ · dout_h(rows, D)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(kv), blasint(D), blasint(rows),
                        1, pb, blasint(S), dob, blasint(ldq), 1, dvg, blasint(ldkv))
            // dP(rows, kv) = dout_h(rows, D) · V_g(kv, D)ᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(rows), blasint(kv), blasint(D),
                        1, dob, blasint(ldq), vg, blasint(ldkv), 0, db, blasint(S))
            // dS = P ⊙ (dP - Σ dP ⊙ P), row by row; masked entries have P = 0 and are set to 0.
            for t in t0..<t1 {
                let pr = p + t * S, dr = ds + t * S                             // (S)
                let visible = causal ? qOffset + t + 1 : S
                let dot = dotRow(dr, pr, visible)
                for j in 0..<visible { dr[j] = pr[j] * (dr[j] - dot) }
                if visible < kv { (dr + visible).update(repeating: 0, count: kv - visible) }
            }
            // dQ_h(rows, D) += scale · dS(rows, kv) · K_g(kv, D)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(rows), blasint(D), blasint(kv),
                        scale, db, blasint(S), kg, blasint(ldkv), 1, dqb, blasint(ldq))
            // dK_g(kv, D) += scale · dS(rows, kv)ᵀ · Q_h(rows, D)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(kv), blasint(D), blasint(rows),
                        scale, db, blasint(S), qb, blasint(ldq), 1, dkg, blasint(ldkv))
        }
    }
}

// Matmul: a linear layer, y = x·Wᵀ + b, through OpenBLAS.
//
// Legend:
//   T  rows (tokens)
//   I  input features
//   O  output features
// Weights use PyTorch's (out, in) layout: W is (O, I), row-major.
//
// Forward overwrites y (or adds to it with `accumulate: true`); the backwards add (+=) into
// their gradient outputs.
//
// OpenBLAS 0.3.21 does not send an M = 1 sgemm to its gemv kernels, and that case is about 4x
// slower than sgemv; one decoding step is exactly that case, so T == 1 goes to sgemv.

import CBLAS

/// y(T,O) = x(T,I) · W(O,I)ᵀ (+ b(O)).
///
/// Uses `cblas_sgemv` when T == 1 and `cblas_sgemm` otherwise. With `accumulate: true` the
/// result is added to y (y += x·Wᵀ + b) instead of overwriting it. y must not alias x or W.
public func matmulForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                          _ b: UnsafePointer<Float>?, T: Int, I: Int, O: Int, accumulate: Bool = false) {
    guard T > 0, O > 0 else { return }
    // Start from the bias (or zero) when overwriting; then y += x·Wᵀ.
    if !accumulate {
        if let b {
            for t in 0..<T { (y + t * O).update(from: b, count: O) }
        } else {
            y.update(repeating: 0, count: T * O)
        }
    } else if let b {
        for t in 0..<T { addForward(y + t * O, y + t * O, b, N: O) }
    }
    guard I > 0 else { return }
    if T == 1 {
        // y(O) += W(O,I) · x(I)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(O), blasint(I), 1, w, blasint(I), x, 1, 1, y, 1)
    } else {
        // y(T,O) += x(T,I) · W(O,I)ᵀ
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(O), blasint(I),
                    1, x, blasint(I), w, blasint(I), 1, y, blasint(O))
    }
}

/// `matmulForward` through `cblas_sgemm` even when T == 1, for the benchmark and the test that
/// compares the two routes. Models should call `matmulForward`.
public func matmulForwardGemm(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              T: Int, I: Int, O: Int) {
    guard T > 0, O > 0 else { return }
    guard I > 0 else { return y.update(repeating: 0, count: T * O) }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(O), blasint(I),
                1, x, blasint(I), w, blasint(I), 0, y, blasint(O))
}

/// dx(T,I) += dy(T,O) · W(O,I). The only matmul gradient a frozen layer needs.
public func matmulBackwardInput(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                T: Int, I: Int, O: Int) {
    guard T > 0, I > 0, O > 0 else { return }
    if T == 1 {
        // dx(I) += W(O,I)ᵀ · dy(O)
        cblas_sgemv(CblasRowMajor, CblasTrans, blasint(O), blasint(I), 1, w, blasint(I), dy, 1, 1, dx, 1)
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(T), blasint(I), blasint(O),
                    1, dy, blasint(O), w, blasint(I), 1, dx, blasint(I))
    }
}

/// dW(O,I) += dy(T,O)ᵀ · x(T,I);  db(O) += Σ_t dy(t,:) when db is non-nil.
public func matmulBackwardWeight(_ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                                 _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, T: Int, I: Int, O: Int) {
    guard T > 0, O > 0 else { return }
    if I > 0 {
        if T == 1 {
            // dW += dy ⊗ x (rank-1 update)
            cblas_sger(CblasRowMajor, blasint(O), blasint(I), 1, dy, 1, x, 1, dw, blasint(I))
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(O), blasint(I), blasint(T),
                        1, dy, blasint(O), x, blasint(I), 1, dw, blasint(I))
        }
    }
    if let db {
        for t in 0..<T { addForward(db, db, dy + t * O, N: O) }
    }
}

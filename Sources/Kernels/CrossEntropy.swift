// Cross-entropy of logits against integer targets (the language-model loss).
//
// Legend:
//   R  rows (token positions)
//   V  vocabulary
//
// A row whose target is negative (e.g. -100, PyTorch's ignore_index, for prompt and image
// positions) is ignored: loss 0, no gradient, not counted. A target ≥ V is a caller bug; such a
// row gets a NaN loss and NaN gradients, so that it cannot go unnoticed.
//
// The forward overwrites losses; the backward adds (+=) into dlogits.

import Foundation

/// losses(R) = -log softmax(logits(R, V))[target] per row; ignored rows get 0.
/// Returns the sum of the losses (accumulated in Double) and the count of non-ignored rows;
/// the mean loss is sum / count.
public func crossEntropyForward(_ losses: UnsafeMutablePointer<Float>, _ logits: UnsafePointer<Float>,
                                _ targets: UnsafePointer<Int32>, R: Int, V: Int) -> (sum: Float, count: Int) {
    var total = 0.0
    var count = 0
    for r in 0..<R {
        let target = Int(targets[r])
        guard target >= 0 else {
            losses[r] = 0
            continue
        }
        count += 1
        guard target < V else {
            losses[r] = .nan
            total = .nan
            continue
        }
        let row = logits + r * V                                               // (V)
        let loss = logSumExp(row, V) - row[target]
        losses[r] = loss
        total += Double(loss)
    }
    return (Float(total), count)
}

/// dlogits(R, V) += scale · (softmax(logits) - onehot(target)) for every non-ignored row
/// (scale = 1 / count for the mean loss).
public func crossEntropyBackward(_ dlogits: UnsafeMutablePointer<Float>, _ logits: UnsafePointer<Float>,
                                 _ targets: UnsafePointer<Int32>, R: Int, V: Int, scale: Float) {
    for r in 0..<R {
        let target = Int(targets[r])
        guard target >= 0 else { continue }
        let row = logits + r * V, drow = dlogits + r * V                        // (V)
        guard target < V else {
            for i in 0..<V { drow[i] = .nan }
            continue
        }
        // softmax(x)_i = exp(x_i - logsumexp(x)); the scale folds into the same pass.
        let shift = F16(repeating: logSumExp(row, V))
        let sv = F16(repeating: scale)
        var i = 0
        while i + 16 <= V {
            store16(drow + i, load16(drow + i) + sv * vexp(load16(row + i) - shift))
            i += 16
        }
        if i < V {
            let n = V - i
            let g = load16(drow + i, count: n, fill: 0) + sv * vexp(load16(row + i, count: n, fill: 0) - shift)
            store16(drow + i, g, count: n)
        }
        drow[target] -= scale
    }
}

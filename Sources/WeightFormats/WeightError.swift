// Errors of the weight-file readers and writers (safetensors, GGUF, strict loading).
// Every message names the file (and the tensor or metadata key where there is one), says what
// is wrong, and where it helps, what to check or run.
import Kernels

/// An error reading, loading or writing a weight file. The description always names the file.
public enum WeightError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, stat'ed or memory-mapped, is empty, or is not a regular file.
    case unreadable(path: String, reason: String)
    /// The file ends before a structure that its header promises (`what`), which needs
    /// `needed` bytes where only `available` remain.
    case truncated(path: String, what: String, needed: UInt64, available: UInt64)
    /// The header is structurally wrong: bad magic, bad header length, invalid JSON, bad UTF-8,
    /// counts or lengths that cannot fit in the file, a bad alignment, a wrongly typed field.
    case malformed(path: String, reason: String)
    /// A GGUF version other than 2 or 3 (version 1 used 32-bit counts and is refused).
    case unsupportedVersion(path: String, version: UInt32)
    /// A tensor's element type is unknown or cannot be converted to float32 by this reader.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// A tensor's shape, byte size or data offsets are invalid (negative or zero dimensions,
    /// overflowing element counts, sizes that do not match, data outside the file, misalignment).
    case invalidTensor(path: String, tensor: String, reason: String)
    /// Two tensors' data ranges overlap, or there is a gap or trailing bytes between them
    /// (safetensors requires the data to be covered exactly).
    case badLayout(path: String, reason: String)
    /// A tensor name or metadata key appears twice.
    case duplicateName(path: String, name: String)
    /// A tensor the model needs is not in the file; `closest` lists the most similar names present.
    case tensorNotFound(path: String, name: String, closest: [String])
    /// A tensor has a shape other than the one the model expects (both in PyTorch order).
    case shapeMismatch(path: String, name: String, expected: [Int], actual: [Int])
    /// Tensors in the file were never loaded nor explicitly ignored (strict loading).
    case unusedTensors(path: String, names: [String])
    /// A metadata key the caller needs is absent.
    case metadataMissing(path: String, key: String)
    /// A metadata key holds a value of another type than the caller needs.
    case metadataTypeMismatch(path: String, key: String, expected: String, actual: String)
    /// A checkpoint directory or its `*.safetensors.index.json` is inconsistent (missing shard,
    /// a tensor in the wrong shard or in none, unsafe shard file names, several candidate files).
    case checkpoint(path: String, reason: String)
    /// A write request is invalid (data size does not match dtype and shape, duplicate or empty name);
    /// nothing was written.
    case invalidWrite(path: String, reason: String)
    /// Writing the file failed (I/O error); the destination was left as it was.
    case writeFailed(path: String, reason: String)
    /// A tensor holds NaN or infinite values (a corrupt or diverged checkpoint).
    case nonFinite(path: String, tensor: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r):
            return "cannot read weight file \(p): \(r)"
        case .nonFinite(let p, let t):
            return "\(p): tensor '\(t)' holds NaN or infinite values. Hint: the file is corrupt or comes from a run that diverged; use another checkpoint."
        case .truncated(let p, let what, let needed, let available):
            return "\(p): file is truncated: \(what) needs \(needed) bytes but only \(available) remain. Hint: the download or copy is probably incomplete; fetch the file again."
        case .malformed(let p, let r):
            return "\(p): malformed weight file: \(r)"
        case .unsupportedVersion(let p, let v):
            if v == 1 {
                return "\(p): GGUF version 1 (32-bit counts) is not supported. Hint: re-convert the model with a current llama.cpp (convert_hf_to_gguf.py) to get GGUF v3."
            }
            return "\(p): unsupported GGUF version \(v) (versions 2 and 3 are supported)"
        case .unsupportedDType(let p, let t, let d):
            return "\(p): tensor '\(t)' has element type \(d), which this reader does not support. Hint: supported types are \(DType.supportedDescription); requantize or convert the file (e.g. llama-quantize to Q8_0 or Q4_K_M)."
        case .invalidTensor(let p, let t, let r):
            return "\(p): tensor '\(t)': \(r)"
        case .badLayout(let p, let r):
            return "\(p): invalid tensor data layout: \(r)"
        case .duplicateName(let p, let n):
            return "\(p): the name '\(n)' appears more than once"
        case .tensorNotFound(let p, let n, let closest):
            let hint = closest.isEmpty ? "" : " Closest names present: \(closest.joined(separator: ", "))."
            return "\(p): tensor '\(n)' not found.\(hint) Hint: check that the file is the model the configuration describes."
        case .shapeMismatch(let p, let n, let e, let a):
            return "\(p): tensor '\(n)' has shape \(a), expected \(e). Hint: the file does not match the model configuration."
        case .unusedTensors(let p, let names):
            let shown = names.prefix(20).joined(separator: ", ")
            let more = names.count > 20 ? " and \(names.count - 20) more" : ""
            return "\(p): \(names.count) tensor(s) were never loaded: \(shown)\(more). Hint: the file holds weights this model does not use (a different architecture or configuration?); ignore them explicitly if that is intended."
        case .metadataMissing(let p, let k):
            return "\(p): metadata key '\(k)' is missing"
        case .metadataTypeMismatch(let p, let k, let e, let a):
            return "\(p): metadata key '\(k)' holds \(a), expected \(e)"
        case .checkpoint(let p, let r):
            return "\(p): invalid checkpoint: \(r)"
        case .invalidWrite(let p, let r):
            return "cannot write \(p): \(r) (nothing was written)"
        case .writeFailed(let p, let r):
            return "writing \(p) failed: \(r) (the destination was left unchanged)"
        }
    }
}

// Strict weight loading: a model takes every tensor it needs by name with the shape it expects,
// and `finish()` fails when the file holds tensors that were never taken nor explicitly ignored.
// A file for another architecture or configuration therefore fails loudly, naming what is wrong,
// instead of leaving weights at zero or silently unused.

import Kernels

/// Takes tensors from a `TensorStore` by name and shape, and checks at the end that none was left over.
public final class StrictLoader {
    /// The store tensors are taken from.
    public let store: TensorStore
    private var used = Set<String>()
    private var ignoredNames = Set<String>()
    private var ignoredPrefixes: [String] = []

    /// Starts strict loading from `store`; nothing is marked as used yet.
    public init(_ store: TensorStore) { self.store = store }

    /// Whether the store holds a tensor named `name` (does not mark it as used).
    public func has(_ name: String) -> Bool { store.tensors[name] != nil }

    /// Checks that tensor `name` exists with shape `shape` (PyTorch order) and marks it as used,
    /// without reading it (for callers that read raw bytes themselves).
    @discardableResult
    public func take(_ name: String, shape: [Int]) throws -> TensorInfo {
        let info = try store.info(name)
        guard info.shape == shape else {
            throw WeightError.shapeMismatch(path: store.path, name: name, expected: shape, actual: info.shape)
        }
        used.insert(name)
        return info
    }

    /// Loads `name` as float32 after checking its shape equals `shape` (PyTorch order).
    public func load(_ name: String, shape: [Int]) throws -> FloatBuffer {
        let info = try take(name, shape: shape)
        let buffer = FloatBuffer(count: info.elementCount)
        try store.readFloats(name, into: buffer.pointer)
        guard allFinite(buffer.pointer, count: buffer.count) else { throw WeightError.nonFinite(path: store.path, tensor: name) }
        return buffer
    }

    /// Same, into caller memory holding the shape's element count of floats.
    public func load(_ name: String, shape: [Int], into destination: UnsafeMutablePointer<Float>) throws {
        let info = try take(name, shape: shape)
        try store.readFloats(name, into: destination)
        guard allFinite(destination, count: info.elementCount) else { throw WeightError.nonFinite(path: store.path, tensor: name) }
    }

    /// Marks every tensor whose name starts with `prefix` as deliberately unused.
    public func ignore(prefix: String) { ignoredPrefixes.append(prefix) }

    /// Marks tensor `name` as deliberately unused.
    public func ignore(_ name: String) { ignoredNames.insert(name) }

    /// Tensors neither loaded nor ignored so far, sorted by name.
    public var unusedNames: [String] {
        store.tensors.keys.filter { name in
            !used.contains(name) && !ignoredNames.contains(name) && !ignoredPrefixes.contains { name.hasPrefix($0) }
        }.sorted()
    }

    /// Throws `WeightError.unusedTensors` listing every tensor never loaded nor ignored.
    public func finish() throws {
        let unused = unusedNames
        if !unused.isEmpty { throw WeightError.unusedTensors(path: store.path, names: unused) }
    }
}

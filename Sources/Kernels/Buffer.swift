// Owned float storage for weights, activations and gradients.
// Buffers are allocated once, sized from a model's config, and never resized: nothing in a
// per-token or per-layer loop allocates (see STYLE.md, "allocate once").

/// A 64-byte aligned, fixed-size buffer of `Float`, zero-filled at creation.
public final class FloatBuffer: @unchecked Sendable {
    /// Number of floats.
    public let count: Int
    /// Start of the storage; valid for the buffer's lifetime.
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats (zero-filled). `count` may be 0.
    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    @inlinable public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// Sets every element to zero.
    public func zero() { pointer.update(repeating: 0, count: count) }

    /// A copy of the contents as an array (for tests and output).
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Read-only view, for passing to kernels.
    @inlinable public var readable: UnsafePointer<Float> { UnsafePointer(pointer) }
}

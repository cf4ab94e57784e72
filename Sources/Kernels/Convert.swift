// Conversions between float32 and the 16-bit formats checkpoints store.
//
// Legend:
//   count  elements converted
//
// f16 is IEEE binary16 (1 sign, 5 exponent, 10 mantissa bits), with subnormals, infinities and
// NaNs. bf16 is the top half of a float32 (1 sign, 8 exponent, 7 mantissa bits).
// The 16-bit side is raw memory at any alignment (a tensor inside a mapped file); the float32
// side is a Float pointer. Narrowing conversions round to nearest, ties to even.
// With -target-cpu haswell the f16 loops compile to F16C instructions (vcvtph2ps/vcvtps2ph).

/// dst(count) = float32 of the IEEE half values at src (exact: every half is a float).
public func convertF16ToF32(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafeRawPointer, count: Int) {
    for i in 0..<count {
        let bits = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
        dst[i] = Float(Float16(bitPattern: bits))
    }
}

/// dst(count) = float32 of the bfloat16 values at src (exact: the bits shift into the top half).
public func convertBF16ToF32(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafeRawPointer, count: Int) {
    for i in 0..<count {
        let bits = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
        dst[i] = Float(bitPattern: UInt32(bits) << 16)
    }
}

/// dst(count) = IEEE half of src, rounded to nearest even; beyond ±65504 (after rounding)
/// gives ±inf, below the smallest subnormal gives ±0, NaN stays NaN.
public func convertF32ToF16(_ dst: UnsafeMutableRawPointer, _ src: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        dst.storeBytes(of: Float16(src[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
    }
}

/// dst(count) = bfloat16 of src, rounded to nearest even (overflow rounds to ±inf). A NaN keeps
/// its sign and top payload bits and is made quiet, so it stays a NaN.
public func convertF32ToBF16(_ dst: UnsafeMutableRawPointer, _ src: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let bits = src[i].bitPattern
        // Adding 0x7FFF plus the lowest kept bit rounds half-way cases to the even neighbour.
        let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
        let nan = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        dst.storeBytes(of: src[i].isNaN ? nan : rounded, toByteOffset: 2 * i, as: UInt16.self)
    }
}

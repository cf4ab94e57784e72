// Conversion of stored tensors to float32: widening of plain types and dequantization of GGML
// block types. Each block formula follows gguf-py's numpy `gguf.quants.dequantize` operation by
// operation (same products, same order, no fused multiply-add), so results are bit-exact.
// Legend: one block holds B values (32, or 256 for K types) in `blockBytes` bytes; a K block is
// split into sub-blocks of 16 or 32 values that each have a scale (and for some a minimum).
// Layouts are given as byte ranges within one block; `d`, `dmin`, `m` are fp16 unless noted.

import Kernels

/// Converts `count` values of `dtype` stored at `src` (any alignment) to float32 at `dst`.
/// `count` must be a whole number of blocks: the readers check this when they open a file.
func convertToFloat32(_ dtype: DType, _ src: UnsafeRawPointer, count: Int, _ dst: UnsafeMutablePointer<Float>) {
    let blocks = count / dtype.blockSize
    switch dtype {
    case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .f16: convertF16ToF32(dst, src, count: count)      // Kernels: F16C, any alignment
    case .bf16: convertBF16ToF32(dst, src, count: count)
    case .f64: for k in 0..<count { dst[k] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self)))) }
    case .i8: for k in 0..<count { dst[k] = Float(src.load(fromByteOffset: k, as: Int8.self)) }
    case .u8: for k in 0..<count { dst[k] = Float(src.load(fromByteOffset: k, as: UInt8.self)) }
    case .bool: for k in 0..<count { dst[k] = src.load(fromByteOffset: k, as: UInt8.self) != 0 ? 1 : 0 }
    case .i16: for k in 0..<count { dst[k] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * k, as: Int16.self))) }
    case .u16: for k in 0..<count { dst[k] = Float(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))) }
    case .i32: for k in 0..<count { dst[k] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self))) }
    case .u32: for k in 0..<count { dst[k] = Float(UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self))) }
    case .i64: for k in 0..<count { dst[k] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self))) }
    case .u64: for k in 0..<count { dst[k] = Float(UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self))) }
    case .f8_e5m2: for k in 0..<count { dst[k] = Float(Float16(bitPattern: UInt16(src.load(fromByteOffset: k, as: UInt8.self)) << 8)) }
    case .f8_e4m3: float8E4M3Table.withUnsafeBufferPointer { table in
        for k in 0..<count { dst[k] = table[Int(src.load(fromByteOffset: k, as: UInt8.self))] }
    }
    case .q8_0: for b in 0..<blocks { dequantizeQ8_0(src + 34 * b, dst + 32 * b) }
    case .q4_0: for b in 0..<blocks { dequantizeQ4_0(src + 18 * b, dst + 32 * b) }
    case .q4_1: for b in 0..<blocks { dequantizeQ4_1(src + 20 * b, dst + 32 * b) }
    case .q5_0: for b in 0..<blocks { dequantizeQ5_0(src + 22 * b, dst + 32 * b) }
    case .q5_1: for b in 0..<blocks { dequantizeQ5_1(src + 24 * b, dst + 32 * b) }
    case .iq4_nl: for b in 0..<blocks { dequantizeIQ4_NL(src + 18 * b, dst + 32 * b) }
    case .q2_K: for b in 0..<blocks { dequantizeQ2_K(src + 84 * b, dst + 256 * b) }
    case .q3_K: for b in 0..<blocks { dequantizeQ3_K(src + 110 * b, dst + 256 * b) }
    case .q4_K: for b in 0..<blocks { dequantizeQ4_K(src + 144 * b, dst + 256 * b) }
    case .q5_K: for b in 0..<blocks { dequantizeQ5_K(src + 176 * b, dst + 256 * b) }
    case .q6_K: for b in 0..<blocks { dequantizeQ6_K(src + 210 * b, dst + 256 * b) }
    case .iq4_xs: for b in 0..<blocks { dequantizeIQ4_XS(src + 136 * b, dst + 256 * b) }
    }
}

// MARK: - scalar helpers

/// The little-endian fp16 at byte `offset`, widened exactly.
@inline(__always) private func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
}

/// The little-endian bfloat16 at byte `offset`, widened exactly (it is the top half of a float32).
@inline(__always) private func bfloat(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))) << 16)
}

@inline(__always) private func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
}

/// float8 E4M3 "fn" (bias 7, no infinities, S.1111.111 is NaN) for each of the 256 bytes.
private let float8E4M3Table: [Float] = (0..<256).map { (b: Int) -> Float in
    let sign: Float = b & 0x80 != 0 ? -1 : 1
    let e = (b >> 3) & 0xF, m = b & 7
    if e == 15 && m == 7 { return .nan }
    if e == 0 { return sign * Float(m) / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
    return sign * (1 + Float(m) / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
}

/// The 16 signed values of IQ4_NL / IQ4_XS nibbles.
private let iq4Values: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

// MARK: - blocks of 32

/// Q8_0, 34 bytes: d [0,2), 32 int8 [2,34). x = q * d.
@inline(__always) private func dequantizeQ8_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0)
    for j in 0..<32 { out[j] = Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
}

/// Q4_0, 18 bytes: d [0,2), nibbles [2,18): value j < 16 is the low nibble of byte j, value
/// 16 + j the high nibble. x = d * (q - 8).
@inline(__always) private func dequantizeQ4_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0)
    for j in 0..<16 {
        let q = byte(p, 2 + j)
        out[j] = d * Float(Int8(q & 0x0F) - 8)
        out[j + 16] = d * Float(Int8(q >> 4) - 8)
    }
}

/// Q4_1, 20 bytes: d [0,2), m [2,4), nibbles [4,20) as Q4_0. x = d * q + m.
@inline(__always) private func dequantizeQ4_1(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0), m = half(p, 2)
    for j in 0..<16 {
        let q = byte(p, 4 + j)
        out[j] = d * Float(q & 0x0F) + m
        out[j + 16] = d * Float(q >> 4) + m
    }
}

/// Q5_0, 22 bytes: d [0,2), qh uint32 [2,6) (bit j is the fifth bit of value j), nibbles [6,22)
/// as Q4_0. x = d * (q - 16).
@inline(__always) private func dequantizeQ5_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0)
    let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
    for j in 0..<16 {
        let q = byte(p, 6 + j)
        let lo = (q & 0x0F) | UInt8((qh >> UInt32(j)) & 1) << 4
        let hi = (q >> 4) | UInt8((qh >> UInt32(j + 16)) & 1) << 4
        out[j] = d * Float(Int8(lo) - 16)
        out[j + 16] = d * Float(Int8(hi) - 16)
    }
}

/// Q5_1, 24 bytes: d [0,2), m [2,4), qh uint32 [4,8), nibbles [8,24). x = d * q + m.
@inline(__always) private func dequantizeQ5_1(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0), m = half(p, 2)
    let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
    for j in 0..<16 {
        let q = byte(p, 8 + j)
        let lo = (q & 0x0F) | UInt8((qh >> UInt32(j)) & 1) << 4
        let hi = (q >> 4) | UInt8((qh >> UInt32(j + 16)) & 1) << 4
        out[j] = d * Float(lo) + m
        out[j + 16] = d * Float(hi) + m
    }
}

/// IQ4_NL, 18 bytes: d [0,2), nibbles [2,18) as Q4_0 indexing a fixed table. x = d * table[q].
@inline(__always) private func dequantizeIQ4_NL(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0)
    iq4Values.withUnsafeBufferPointer { table in
        for j in 0..<16 {
            let q = byte(p, 2 + j)
            out[j] = d * table[Int(q & 0x0F)]
            out[j + 16] = d * table[Int(q >> 4)]
        }
    }
}

// MARK: - K super-blocks of 256

/// Q2_K, 84 bytes: scales [0,16) (low nibble scale, high nibble min, per 16 values), 2-bit
/// values [16,80), d [80,82), dmin [82,84). Value i = 128g + 32s + l is bits 2s..2s+1 of byte
/// 16 + 32g + l. x = (d * sc) * q - (dmin * mn).
@inline(__always) private func dequantizeQ2_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 80), dmin = half(p, 82)
    for k in 0..<16 {  // sub-block of 16 values
        let sc = byte(p, k)
        let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
        for t in 0..<16 {
            let i = 16 * k + t
            let g = i >> 7, s = (i >> 5) & 3, l = i & 31
            let q = (byte(p, 16 + 32 * g + l) >> UInt8(2 * s)) & 3
            out[i] = dl * Float(q) - ml
        }
    }
}

/// Q3_K, 110 bytes: hmask [0,32), 2-bit values [32,96), 6-bit scales [96,108), d [108,110).
/// Value i = 128g + 32s + l: low bits 2s..2s+1 of byte 32 + 32g + l, high bit (i / 32) of
/// hmask byte l; the value is low - 4 when that bit is clear. Scale k (per 16 values): low nibble
/// of byte k (k < 8) or high nibble of byte k - 8, plus bits 2(k/4)..+1 of byte 8 + k%4, minus 32.
/// x = (d * scale) * q.
@inline(__always) private func dequantizeQ3_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 108)
    for k in 0..<16 {
        let low = k < 8 ? byte(p, 96 + k) & 0x0F : byte(p, 96 + k - 8) >> 4
        let high = (byte(p, 96 + 8 + (k & 3)) >> UInt8(2 * (k >> 2))) & 3
        let dl = d * Float(Int8(bitPattern: low | high << 4) - 32)
        for t in 0..<16 {
            let i = 16 * k + t
            let g = i >> 7, s = (i >> 5) & 3, l = i & 31
            let ql = Int8((byte(p, 32 + 32 * g + l) >> UInt8(2 * s)) & 3)
            let hbit = Int8((byte(p, l) >> UInt8(i >> 5)) & 1)
            out[i] = dl * Float(ql - ((hbit ^ 1) << 2))
        }
    }
}

/// The 6-bit scale and minimum of sub-block j (of 8) in the 12 packed bytes at `s` (Q4_K, Q5_K):
/// j < 4: low 6 bits of bytes j and j+4; j >= 4: a nibble of byte j+4 plus the top 2 bits of
/// bytes j-4 and j.
@inline(__always) private func scaleMinK4(_ s: UnsafeRawPointer, _ j: Int) -> (Float, Float) {
    if j < 4 {
        return (Float(byte(s, j) & 63), Float(byte(s, j + 4) & 63))
    }
    let sc = (byte(s, j + 4) & 0x0F) | (byte(s, j - 4) >> 6) << 4
    let mn = (byte(s, j + 4) >> 4) | (byte(s, j) >> 6) << 4
    return (Float(sc), Float(mn))
}

/// Q4_K, 144 bytes: d [0,2), dmin [2,4), scales [4,16), nibbles [16,144). Sub-block j (32 values)
/// is the low (j even) or high (j odd) nibbles of bytes 16 + 32(j/2) ..< +32.
/// x = (d * sc) * q - (dmin * mn).
@inline(__always) private func dequantizeQ4_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0), dmin = half(p, 2)
    for j in 0..<8 {
        let (sc, mn) = scaleMinK4(p + 4, j)
        let dl = d * sc, ml = dmin * mn
        let q = p + 16 + 32 * (j >> 1)
        let shift = UInt8(4 * (j & 1))
        let o = out + 32 * j
        for l in 0..<32 { o[l] = dl * Float((byte(q, l) >> shift) & 0x0F) - ml }
    }
}

/// Q5_K, 176 bytes: d [0,2), dmin [2,4), scales [4,16), qh [16,48), nibbles [48,176). Sub-block
/// j as Q4_K, with bit j of qh byte l as the fifth bit of its value l. x = (d * sc) * q - (dmin * mn).
@inline(__always) private func dequantizeQ5_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0), dmin = half(p, 2)
    for j in 0..<8 {
        let (sc, mn) = scaleMinK4(p + 4, j)
        let dl = d * sc, ml = dmin * mn
        let q = p + 48 + 32 * (j >> 1)
        let shift = UInt8(4 * (j & 1))
        let o = out + 32 * j
        for l in 0..<32 {
            let v = ((byte(q, l) >> shift) & 0x0F) | ((byte(p, 16 + l) >> UInt8(j)) & 1) << 4
            o[l] = dl * Float(v) - ml
        }
    }
}

/// Q6_K, 210 bytes: low nibbles [0,128), high 2 bits [128,192), int8 scales [192,208), d [208,210).
/// Value i = 128g + r: low nibble from byte 64g + r%64 (shift 4(r/64)), high bits from byte
/// 128 + 32g + r%32 (shift 2(r/32)); q = (low | high << 4) - 32. x = (d * scale[i/16]) * q.
@inline(__always) private func dequantizeQ6_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 208)
    for k in 0..<16 {
        let dl = d * Float(p.load(fromByteOffset: 192 + k, as: Int8.self))
        for t in 0..<16 {
            let i = 16 * k + t
            let g = i >> 7, r = i & 127
            let low = (byte(p, 64 * g + (r & 63)) >> UInt8(4 * (r >> 6))) & 0x0F
            let high = (byte(p, 128 + 32 * g + (r & 31)) >> UInt8(2 * (r >> 5))) & 3
            out[i] = dl * Float(Int8(low | high << 4) - 32)
        }
    }
}

/// IQ4_XS, 136 bytes: d [0,2), scales_h uint16 [2,4), scales_l [4,8), nibbles [8,136). Sub-block
/// j (32 values): scale = (nibble j%2 of byte 4 + j/2 | bits 2j..2j+1 of scales_h << 4) - 32;
/// values are low then high nibbles of bytes 8 + 16j ..< +16, indexing the IQ4 table.
/// x = (d * scale) * table[q].
@inline(__always) private func dequantizeIQ4_XS(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = half(p, 0)
    let scalesHigh = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
    iq4Values.withUnsafeBufferPointer { table in
        for j in 0..<8 {
            let low = (byte(p, 4 + j / 2) >> UInt8(4 * (j & 1))) & 0x0F
            let high = UInt8((scalesHigh >> UInt16(2 * j)) & 3)
            let dl = d * Float(Int8(low | high << 4) - 32)
            let o = out + 32 * j
            for l in 0..<16 {
                let q = byte(p, 8 + 16 * j + l)
                o[l] = dl * table[Int(q & 0x0F)]
                o[l + 16] = dl * table[Int(q >> 4)]
            }
        }
    }
}

/// Converts `count` values (a whole number of blocks) of `dtype` at `src` to float32 at `dst`,
/// bit-exactly like gguf-py: the reference the quantized kernels are tested against.
public func dequantize(_ dtype: DType, _ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    precondition(count % dtype.blockSize == 0, "dequantize: \(count) values is not a whole number of \(dtype.rawValue) blocks")
    convertToFloat32(dtype, src, count: count, dst)
}

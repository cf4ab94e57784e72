// Image preprocessing as transformers' PIL image processors do it (`PilBackend._preprocess`):
// resize (Pillow-exact, on 8-bit pixels) -> center crop (zero-padded when the image is smaller)
// -> rescale (uint8 -> float64 * factor -> float32) -> normalize ((x - mean) / std in float32)
// -> optional bottom/right zero padding, channels-first.
// Legend: N images, H height, W width; output pixels are (N, 3, H, W) float32.

import Foundation
import WeightFormats
import Kernels

/// A resolved image processor: every option decided, defaults of the processor class applied.
public struct ImagePreprocessing: Sendable, Equatable {
    /// How the resize step chooses the output size, as transformers' `PilBackend.resize`.
    public enum ResizeRule: Sendable, Equatable {
        /// Shortest edge to `n`, aspect ratio kept (`get_resize_output_image_size`, default_to_square=False).
        case shortestEdge(Int)
        /// Shortest edge to `short` unless the longest would pass `long` (`get_size_with_aspect_ratio`).
        case shortestAndLongestEdge(Int, Int)
        /// Exactly `height` × `width`.
        case fixed(height: Int, width: Int)
        /// Largest size that fits in `height` × `width`, aspect ratio kept (`get_image_size_for_max_height_width`).
        case fitWithin(height: Int, width: Int)
    }

    /// nil when `do_resize` is false.
    public var resize: ResizeRule?
    public var filter: ResampleFilter
    /// (height, width) of the center crop, nil when `do_center_crop` is false.
    public var centerCrop: (height: Int, width: Int)? {
        get { crop.map { ($0[0], $0[1]) } }
        set { crop = newValue.map { [$0.height, $0.width] } }
    }
    /// nil when `do_rescale` is false.
    public var rescaleFactor: Double?
    /// Per-channel mean and std (3 each), nil when `do_normalize` is false.
    public var mean: [Float]?
    public var std: [Float]?
    /// (height, width) to pad to after normalization; `[0, 0]` pads to the largest image of the
    /// batch (`do_pad` without `pad_size`); nil when `do_pad` is false.
    public var pad: [Int]?
    private var crop: [Int]?

    /// The processor classes whose defaults swift-vlm knows (with or without "Fast"/"Pil").
    public static let supportedClasses = ["CLIPImageProcessor", "CLIPFeatureExtractor", "BitImageProcessor",
                                          "SiglipImageProcessor", "ViTImageProcessor", "ViTFeatureExtractor"]

    /// Resolves `config` (read from `path`, used in errors) against its processor class's defaults.
    public init(_ config: PreprocessorConfig, path: String) throws {
        let rawType = config.imageProcessorType ?? config.featureExtractorType
        guard let rawType else {
            throw PreprocessorError.invalid(path: path, key: "image_processor_type",
                                            reason: "missing; it names the processor class whose defaults apply (e.g. \"CLIPImageProcessor\")")
        }
        var type = rawType
        for suffix in ["Fast", "Pil"] where type.hasSuffix(suffix) { type.removeLast(suffix.count) }
        let clipMean = [0.48145466, 0.4578275, 0.40821073], clipStd = [0.26862954, 0.26130258, 0.27577711]
        let half = [0.5, 0.5, 0.5]
        // Class defaults, from transformers' image_processing_pil_{clip,bit,siglip,vit}.py.
        var dResample = 3, dMean = clipMean, dStd = clipStd, dSquare = false
        var dSize = ProcessorSize(shortestEdge: 224), dCrop: ProcessorSize? = ProcessorSize(height: 224, width: 224)
        var dCenterCrop = true
        switch type {
        case "CLIPImageProcessor", "CLIPFeatureExtractor", "BitImageProcessor":
            break
        case "SiglipImageProcessor":
            dMean = half; dStd = half; dSize = ProcessorSize(height: 224, width: 224); dCrop = nil; dCenterCrop = false
        case "ViTImageProcessor", "ViTFeatureExtractor":
            dResample = 2; dMean = half; dStd = half; dSquare = true
            dSize = ProcessorSize(height: 224, width: 224); dCrop = nil; dCenterCrop = false
        default:
            throw PreprocessorError.unsupported(path: path, key: config.imageProcessorType != nil ? "image_processor_type" : "feature_extractor_type",
                                                value: "\"\(rawType)\"", hint: "supported: \(Self.supportedClasses.joined(separator: ", "))")
        }

        // resample
        let r = config.resample ?? dResample
        guard let f = ResampleFilter(rawValue: r) else {
            throw PreprocessorError.invalid(path: path, key: "resample", reason: "\(r) is not a Pillow filter number (0...5)")
        }
        if f == .nearest {
            throw PreprocessorError.unsupported(path: path, key: "resample", value: "0 (nearest)",
                                                hint: "use 2 (bilinear), 3 (bicubic), 4 (box), 5 (hamming) or 1 (lanczos)")
        }
        filter = f

        // resize
        if config.doResize ?? true {
            resize = try Self.rule(config.size ?? dSize, defaultToSquare: dSquare, path: path)
        }

        // center crop
        if config.doCenterCrop ?? dCenterCrop {
            guard let c = config.cropSize ?? dCrop else {
                throw PreprocessorError.invalid(path: path, key: "crop_size", reason: "do_center_crop is true but crop_size is missing")
            }
            crop = try Self.heightWidth(c, key: "crop_size", path: path)
        }

        // rescale
        if config.doRescale ?? true {
            let s = config.rescaleFactor ?? 1.0 / 255.0
            guard s.isFinite, s > 0 else { throw PreprocessorError.invalid(path: path, key: "rescale_factor", reason: "must be a positive number, got \(s)") }
            rescaleFactor = s
        }

        // normalize
        if config.doNormalize ?? true {
            func three(_ v: [Double], _ key: String) throws -> [Float] {
                if v.count == 1 { return [Float](repeating: Float(v[0]), count: 3) }
                guard v.count == 3 else { throw PreprocessorError.invalid(path: path, key: key, reason: "needs 1 or 3 values, got \(v.count)") }
                guard v.allSatisfy(\.isFinite) else { throw PreprocessorError.invalid(path: path, key: key, reason: "values must be finite") }
                return v.map { Float($0) }
            }
            mean = try three(config.imageMean?.values ?? dMean, "image_mean")
            let s = try three(config.imageStd?.values ?? dStd, "image_std")
            guard s.allSatisfy({ $0 != 0 }) else { throw PreprocessorError.invalid(path: path, key: "image_std", reason: "values must be non-zero") }
            std = s
        }

        // pad
        if config.doPad ?? false {
            pad = try config.padSize.map { try Self.heightWidth($0, key: "pad_size", path: path) } ?? [0, 0]
        }
    }

    /// Largest side a size, crop or pad in preprocessor_config.json may ask for (released models
    /// use 224-1024); a bigger one fails at load instead of allocating gigabytes per image.
    public static let maxSide = 4096
    /// Most pixels the resize step may produce for one image (an extreme aspect ratio resized to a
    /// shortest edge), 64 Mpx: 192 MiB of 8-bit pixels.
    public static let maxResizedPixels = 64 << 20

    static func rule(_ s: ProcessorSize, defaultToSquare: Bool, path: String) throws -> ResizeRule {
        func positive(_ v: Int, _ name: String) throws -> Int {
            guard v > 0 else { throw PreprocessorError.invalid(path: path, key: "size.\(name)", reason: "must be positive, got \(v)") }
            guard v <= maxSide else { throw PreprocessorError.invalid(path: path, key: "size.\(name)", reason: "\(v) is larger than the \(maxSide) pixels swift-vlm allows") }
            return v
        }
        if let n = s.bare {
            let v = try positive(n, "(value)")
            return defaultToSquare ? .fixed(height: v, width: v) : .shortestEdge(v)
        }
        if let se = s.shortestEdge, let le = s.longestEdge {
            return .shortestAndLongestEdge(try positive(se, "shortest_edge"), try positive(le, "longest_edge"))
        }
        if let se = s.shortestEdge { return .shortestEdge(try positive(se, "shortest_edge")) }
        if let mh = s.maxHeight, let mw = s.maxWidth {
            return .fitWithin(height: try positive(mh, "max_height"), width: try positive(mw, "max_width"))
        }
        if let h = s.height, let w = s.width { return .fixed(height: try positive(h, "height"), width: try positive(w, "width")) }
        throw PreprocessorError.invalid(path: path, key: "size",
                                        reason: "needs shortest_edge, shortest_edge+longest_edge, max_height+max_width or height+width")
    }

    static func heightWidth(_ s: ProcessorSize, key: String, path: String) throws -> [Int] {
        let hw: [Int]
        if let n = s.bare { hw = [n, n] }
        else if let h = s.height, let w = s.width { hw = [h, w] }
        else { throw PreprocessorError.invalid(path: path, key: key, reason: "needs height and width") }
        guard hw.allSatisfy({ $0 > 0 }) else { throw PreprocessorError.invalid(path: path, key: key, reason: "height and width must be positive") }
        guard hw.allSatisfy({ $0 <= maxSide }) else {
            throw PreprocessorError.invalid(path: path, key: key, reason: "\(hw[0])x\(hw[1]) is larger than the \(maxSide) pixels swift-vlm allows")
        }
        return hw
    }

    // MARK: sizes

    /// The (height, width) the resize step produces for an input of (height, width).
    public func resizedSize(height h: Int, width w: Int) -> (height: Int, width: Int) {
        guard let resize else { return (h, w) }
        switch resize {
        case .fixed(let fh, let fw):
            return (fh, fw)
        case .shortestEdge(let size):
            let (short, long) = w <= h ? (w, h) : (h, w)
            let newLong = Int(Double(size * long) / Double(short))
            return w <= h ? (newLong, size) : (size, newLong)
        case .shortestAndLongestEdge(var size, let maxSize):
            var raw: Double? = nil
            let minOrig = Double(min(h, w)), maxOrig = Double(max(h, w))
            if maxOrig / minOrig * Double(size) > Double(maxSize) {
                raw = Double(maxSize) * minOrig / maxOrig
                size = Int(raw!.rounded(.toNearestOrEven))
            }
            if (h <= w && h == size) || (w <= h && w == size) { return (h, w) }
            if w < h {
                let oh = raw.map { Int($0 * Double(h) / Double(w)) } ?? Int(Double(size * h) / Double(w))
                return (oh, size)
            }
            let ow = raw.map { Int($0 * Double(w) / Double(h)) } ?? Int(Double(size * w) / Double(h))
            return (size, ow)
        case .fitWithin(let mh, let mw):
            let s = min(Double(mh) / Double(h), Double(mw) / Double(w))
            return (Int(Double(h) * s), Int(Double(w) * s))
        }
    }

    /// The same processing with a square output of `n` × `n` pixels: a shortest-edge resize to
    /// `n` (then the n × n center crop) where the processor crops, else a fixed n × n resize; the
    /// filter, rescale and normalisation stay. What `--image-size` runs a vision encoder at.
    public func squareOutput(_ n: Int) -> ImagePreprocessing {
        var p = self
        if crop != nil || resize.map({ if case .shortestEdge = $0 { return true } else { return false } }) == true {
            p.resize = .shortestEdge(n)
            p.crop = [n, n]
        } else {
            p.resize = .fixed(height: n, width: n)
            p.crop = nil
        }
        p.pad = nil
        return p
    }

    /// The (height, width) of one image's output: after resize and crop, and padding to
    /// `pad_size` when one is set (padding to the batch's largest image is not included).
    public func outputSize(height h: Int, width w: Int) -> (height: Int, width: Int) {
        var r = resizedSize(height: h, width: w)
        if let crop { r = (crop[0], crop[1]) }
        if let pad, pad != [0, 0] { r = (max(r.height, pad[0]), max(r.width, pad[1])) }
        return r
    }

    /// Reads and resolves `directory`/preprocessor_config.json.
    public static func load(directory: String) throws -> ImagePreprocessing {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("preprocessor_config.json").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw PreprocessorError.unreadable(path: path, reason: "missing; a vision model directory needs its preprocessor_config.json (it says how to resize and normalise images)")
        }
        return try ImagePreprocessing(PreprocessorConfig.load(path), path: path)
    }

    // MARK: pipeline

    /// Throws when an image of `width` × `height` cannot be preprocessed (its resize is empty or
    /// too large), naming it `name`: callers check each image before batching them.
    public func check(width: Int, height: Int, name: String) throws {
        guard resize != nil else { return }
        guard width > 0, height > 0 else {
            throw PreprocessorError.invalid(path: name, key: "size", reason: "the image is empty (\(width)x\(height))")
        }
        let (h, w) = resizedSize(height: height, width: width)
        guard h > 0, w > 0 else {
            throw PreprocessorError.invalid(path: name, key: "size", reason: "resizing the \(width)x\(height) image gives an empty \(w)x\(h) image")
        }
        guard h * w <= Self.maxResizedPixels else {
            throw PreprocessorError.invalid(path: name, key: "size", reason: "resizing the \(width)x\(height) image gives \(w)x\(h), over \(Self.maxResizedPixels >> 20) Mpx")
        }
    }

    /// The 8-bit image after resize and center crop (what transformers holds before rescaling).
    public func resizedAndCropped(_ image: RGBImage, name: String? = nil) throws -> RGBImage {
        var img = image
        if resize != nil {
            try check(width: image.width, height: image.height, name: name ?? "(image \(image.width)x\(image.height))")
            let (h, w) = resizedSize(height: image.height, width: image.width)
            img = PILResize.resize(img, width: w, height: h, filter: filter)
        }
        if let crop { img = Self.centerCrop(img, height: crop[0], width: crop[1]) }
        return img
    }

    /// transformers' `center_crop`: offsets floor((H - h) / 2) and floor((W - w) / 2); where the
    /// image is smaller than the crop it sits in a zero canvas (offset ceil(diff / 2)), which
    /// comes to the same source offsets, with zeros outside the image.
    public static func centerCrop(_ image: RGBImage, height ch: Int, width cw: Int) -> RGBImage {
        let h = image.height, w = image.width
        func floorDiv2(_ v: Int) -> Int { v >= 0 ? v / 2 : -((-v + 1) / 2) }
        let top = floorDiv2(h - ch), left = floorDiv2(w - cw)
        var out = [UInt8](repeating: 0, count: ch * cw * 3)   // (ch, cw, 3)
        for y in 0..<ch {
            let sy = top + y                     // source row
            guard sy >= 0 && sy < h else { continue }
            for x in 0..<cw {
                let sx = left + x
                guard sx >= 0 && sx < w else { continue }
                let s = (sy * w + sx) * 3, d = (y * cw + x) * 3
                out[d] = image.pixels[s]; out[d + 1] = image.pixels[s + 1]; out[d + 2] = image.pixels[s + 2]
            }
        }
        return RGBImage(width: cw, height: ch, pixels: out)
    }

    /// Rescales and normalizes an 8-bit (h, w, 3) image into the top-left corner of the
    /// channels-first planes `out` (3, outHeight, outWidth); the rest (batch padding) is untouched.
    func writeChannelsFirst(_ img: RGBImage, into out: UnsafeMutablePointer<Float>, outHeight oh: Int, outWidth ow: Int) {
        let h = img.height, w = img.width
        img.pixels.withUnsafeBufferPointer { p in
            for c in 0..<3 {
                let plane = out + c * oh * ow
                let m = mean?[c] ?? 0, s = std?[c] ?? 1
                for y in 0..<h {
                    for x in 0..<w {
                        let v = p[(y * w + x) * 3 + c]
                        var f = rescaleFactor.map { Float(Double(v) * $0) } ?? Float(v)
                        if mean != nil { f = (f - m) / s }
                        plane[y * ow + x] = f
                    }
                }
            }
        }
    }

    /// Preprocesses one image to (3, H, W) float32.
    public func callAsFunction(_ image: RGBImage) throws -> (height: Int, width: Int, pixels: [Float]) {
        let batch = try self.batch([image], names: ["image"])
        return (batch.height, batch.width, batch.pixels.toArray())
    }

    /// Preprocesses a batch to (N, 3, H, W) float32. All images must come out with one size
    /// (fixed resize, center crop or padding make sure of it); `names` are used in errors.
    public func batch(_ images: [RGBImage], names: [String]) throws -> (height: Int, width: Int, pixels: FloatBuffer) {
        precondition(images.count == names.count, "one name per image")
        let ready = try zip(images, names).map { try resizedAndCropped($0, name: $1) }
        var oh = ready.first?.height ?? 0, ow = ready.first?.width ?? 0
        if let pad {
            if pad == [0, 0] {
                oh = ready.map(\.height).max() ?? 0; ow = ready.map(\.width).max() ?? 0
            } else {
                oh = pad[0]; ow = pad[1]
                for (img, name) in zip(ready, names) where img.height > oh || img.width > ow {
                    throw PreprocessorError.invalid(path: name, key: "pad_size",
                                                    reason: "image is \(img.height)x\(img.width) after resizing, larger than pad_size \(oh)x\(ow)")
                }
            }
        } else {
            for (img, name) in zip(ready, names) where img.height != oh || img.width != ow {
                throw PreprocessorError.mixedSizes(first: names[0], firstSize: [oh, ow], other: name, otherSize: [img.height, img.width])
            }
        }
        let out = FloatBuffer(count: images.count * 3 * oh * ow)   // (N, 3, H, W), padding stays 0
        for (i, img) in ready.enumerated() {
            writeChannelsFirst(img, into: out.pointer + i * 3 * oh * ow, outHeight: oh, outWidth: ow)
        }
        return (oh, ow, out)
    }
}


// `preprocessor_config.json` of Hugging Face image processors (CLIPImageProcessor,
// BitImageProcessor as DINOv2 uses it, SiglipImageProcessor, ViTImageProcessor), decoded with
// explicit keys and resolved against each processor class's defaults, as transformers does
// when a key is absent.

import WeightFormats
import Kernels
import Foundation

/// A size entry of an image processor config: an integer (old configs) or a dictionary with one
/// of the key sets transformers accepts.
public struct ProcessorSize: Codable, Equatable, Sendable {
    /// Resize the shorter side to this, keeping the aspect ratio.
    public var shortestEdge: Int?
    /// With `shortestEdge`: the longer side may not exceed this.
    public var longestEdge: Int?
    /// Fixed output height (with `width`).
    public var height: Int?
    /// Fixed output width (with `height`).
    public var width: Int?
    /// Fit inside max_height × max_width, keeping the aspect ratio.
    public var maxHeight: Int?
    /// See `maxHeight`.
    public var maxWidth: Int?
    /// Set when the file held a bare integer; resolved by `default_to_square`.
    public var bare: Int?

    enum CodingKeys: String, CodingKey {
        case shortestEdge = "shortest_edge"
        case longestEdge = "longest_edge"
        case height, width
        case maxHeight = "max_height"
        case maxWidth = "max_width"
    }

    public init(shortestEdge: Int? = nil, longestEdge: Int? = nil, height: Int? = nil, width: Int? = nil,
                maxHeight: Int? = nil, maxWidth: Int? = nil) {
        self.shortestEdge = shortestEdge; self.longestEdge = longestEdge
        self.height = height; self.width = width; self.maxHeight = maxHeight; self.maxWidth = maxWidth
    }

    public init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let n = try? single.decode(Int.self) {
            bare = n
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        shortestEdge = try c.decodeIfPresent(Int.self, forKey: .shortestEdge)
        longestEdge = try c.decodeIfPresent(Int.self, forKey: .longestEdge)
        height = try c.decodeIfPresent(Int.self, forKey: .height)
        width = try c.decodeIfPresent(Int.self, forKey: .width)
        maxHeight = try c.decodeIfPresent(Int.self, forKey: .maxHeight)
        maxWidth = try c.decodeIfPresent(Int.self, forKey: .maxWidth)
    }

    public func encode(to encoder: Encoder) throws {
        if let bare {
            var single = encoder.singleValueContainer()
            try single.encode(bare)
            return
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(shortestEdge, forKey: .shortestEdge)
        try c.encodeIfPresent(longestEdge, forKey: .longestEdge)
        try c.encodeIfPresent(height, forKey: .height)
        try c.encodeIfPresent(width, forKey: .width)
        try c.encodeIfPresent(maxHeight, forKey: .maxHeight)
        try c.encodeIfPresent(maxWidth, forKey: .maxWidth)
    }
}

/// A number or a list of numbers (`image_mean: 0.5` and `image_mean: [0.5, 0.5, 0.5]` both occur).
public struct ProcessorTriple: Codable, Equatable, Sendable {
    /// One value (for every channel) or one per channel.
    public var values: [Double]
    public init(_ values: [Double]) { self.values = values }
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Double.self) { values = [v] } else { values = try c.decode([Double].self) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(values)
    }
}

/// The keys of `preprocessor_config.json` swift-vlm reads. Absent keys take the defaults of the
/// processor class named by `image_processor_type` (see `ImagePreprocessing`).
public struct PreprocessorConfig: Codable, Equatable, Sendable {
    /// The processor class ("CLIPImageProcessor", "BitImageProcessor", ...), whose defaults fill absent keys.
    public var imageProcessorType: String?
    /// Old configs name the class here instead (e.g. "CLIPFeatureExtractor").
    public var featureExtractorType: String?
    /// Whether to resize (default true).
    public var doResize: Bool?
    /// The resize target.
    public var size: ProcessorSize?
    /// Pillow filter number: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming (0 nearest is refused).
    public var resample: Int?
    /// Whether to center-crop after resizing.
    public var doCenterCrop: Bool?
    /// The crop's height and width.
    public var cropSize: ProcessorSize?
    /// Whether to multiply the 8-bit values by `rescaleFactor` (default true).
    public var doRescale: Bool?
    /// Usually 1/255.
    public var rescaleFactor: Double?
    /// Whether to subtract `imageMean` and divide by `imageStd` per channel (default true).
    public var doNormalize: Bool?
    /// Per-channel mean (after rescaling).
    public var imageMean: ProcessorTriple?
    /// Per-channel standard deviation.
    public var imageStd: ProcessorTriple?
    /// Read but not needed: ImageFile always produces RGB.
    public var doConvertRGB: Bool?
    /// Whether to zero-pad (bottom/right, after normalising) to `padSize` or to the batch's largest image.
    public var doPad: Bool?
    /// The padded height and width.
    public var padSize: ProcessorSize?

    enum CodingKeys: String, CodingKey {
        case imageProcessorType = "image_processor_type"
        case featureExtractorType = "feature_extractor_type"
        case doResize = "do_resize"
        case size
        case resample
        case doCenterCrop = "do_center_crop"
        case cropSize = "crop_size"
        case doRescale = "do_rescale"
        case rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize"
        case imageMean = "image_mean"
        case imageStd = "image_std"
        case doConvertRGB = "do_convert_rgb"
        case doPad = "do_pad"
        case padSize = "pad_size"
    }

    public init(imageProcessorType: String? = nil, featureExtractorType: String? = nil, doResize: Bool? = nil,
                size: ProcessorSize? = nil, resample: Int? = nil, doCenterCrop: Bool? = nil, cropSize: ProcessorSize? = nil,
                doRescale: Bool? = nil, rescaleFactor: Double? = nil, doNormalize: Bool? = nil,
                imageMean: [Double]? = nil, imageStd: [Double]? = nil, doConvertRGB: Bool? = nil,
                doPad: Bool? = nil, padSize: ProcessorSize? = nil) {
        self.imageProcessorType = imageProcessorType; self.featureExtractorType = featureExtractorType
        self.doResize = doResize; self.size = size; self.resample = resample
        self.doCenterCrop = doCenterCrop; self.cropSize = cropSize
        self.doRescale = doRescale; self.rescaleFactor = rescaleFactor
        self.doNormalize = doNormalize; self.imageMean = imageMean.map(ProcessorTriple.init)
        self.imageStd = imageStd.map(ProcessorTriple.init); self.doConvertRGB = doConvertRGB
        self.doPad = doPad; self.padSize = padSize
    }

    /// Reads and decodes a `preprocessor_config.json`; errors name the file and the key.
    public static func load(_ path: String) throws -> PreprocessorConfig {
        let data: Data
        if let problem = fileProblem(path) { throw PreprocessorError.unreadable(path: path, reason: problem) }
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PreprocessorError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        do {
            return try JSONDecoder().decode(PreprocessorConfig.self, from: data)
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx),
                let DecodingError.keyNotFound(_, ctx) {
            let key = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            throw PreprocessorError.invalid(path: path, key: key.isEmpty ? "(top level)" : key, reason: ctx.debugDescription)
        } catch let DecodingError.dataCorrupted(ctx) {
            throw PreprocessorError.invalid(path: path, key: "(file)", reason: "not valid JSON: \(ctx.debugDescription)")
        }
    }
}

/// Errors reading or resolving an image processor config, or preprocessing with it.
public enum PreprocessorError: Error, CustomStringConvertible, Equatable {
    /// The config file could not be read.
    case unreadable(path: String, reason: String)
    /// A key has a wrong type or an unusable value.
    case invalid(path: String, key: String, reason: String)
    /// The processor class or option is one swift-vlm does not implement.
    case unsupported(path: String, key: String, value: String, hint: String)
    /// Images of one batch would come out with different sizes.
    case mixedSizes(first: String, firstSize: [Int], other: String, otherSize: [Int])

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read image processor config \(p): \(r)"
        case .invalid(let p, let k, let r): return "\(p): key '\(k)': \(r)"
        case .unsupported(let p, let k, let v, let h): return "\(p): key '\(k)' = \(v) is not supported; \(h)"
        case .mixedSizes(let a, let sa, let b, let sb):
            return "images of one batch must preprocess to one size: \(a) gives \(sa), \(b) gives \(sb) (hint: enable do_center_crop or use a fixed height/width size)"
        }
    }
}

// Images arriving in requests: `data:` URLs (base64 JPEG/PNG), or local files when the server
// was started with --allow-files DIR. Every size is checked before the work it would cost:
// the encoded length before base64 decoding, the file size before reading, the pixel count
// from the header before any pixel memory (the decoders' decompression-bomb guard).

import Backbones
import Foundation

/// Limits on what one request may carry.
public struct RequestLimits: Sendable {
    /// Largest request body, in bytes (413 above it).
    public var maxBodyBytes: Int = 16 << 20
    /// Largest image after base64 decoding (or file size), in bytes.
    public var maxImageBytes: Int = 8 << 20
    /// Largest image, in pixels (width × height), checked from the header before decoding.
    public var maxImagePixels: UInt64 = 40_000_000
    /// Images per request: the model takes one image per conversation.
    public var maxImages: Int = 1
    /// Largest `max_tokens` a request may ask for.
    public var maxTokens: Int = 1024
    /// `max_tokens` when a request gives none.
    public var defaultMaxTokens: Int = 256
    /// Candidates per /v1/score request.
    public var maxCandidates: Int = 64
    public init() {}
}

enum ImageInput {
    /// The bytes of the image `url` names; `param` is the request field, for errors.
    static func bytes(of url: String, param: String, limits: RequestLimits, allowedFiles: URL?) throws -> Data {
        let lower = url.lowercased()
        if lower.hasPrefix("data:") { return try dataURL(url, param: param, limits: limits) }
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            throw APIError.invalid("unsupported_image_url", "remote image URLs are not fetched by this server; send the image as a data: URL (data:image/jpeg;base64,...)", param: param)
        }
        var path = url
        if lower.hasPrefix("file://") { path = String(url.dropFirst("file://".count)) }
        guard path.hasPrefix("/") else {
            throw APIError.invalid("unsupported_image_url", "image_url must be a data: URL (data:image/png;base64,...) or, with --allow-files, an absolute file path", param: param)
        }
        guard let allowed = allowedFiles else {
            throw APIError(.forbidden, code: "files_not_allowed",
                           "local file paths are refused: start the server with --allow-files DIR to allow images under DIR", param: param)
        }
        // the real path (symlinks and .. resolved) must lie inside the allowed directory
        let resolved = URL(fileURLWithPath: path.removingPercentEncoding ?? path).standardizedFileURL.resolvingSymlinksInPath().path
        let root = allowed.standardizedFileURL.resolvingSymlinksInPath().path
        guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw APIError(.forbidden, code: "file_outside_allowed_directory", "\(path) is outside the directory allowed by --allow-files (\(root))", param: param)
        }
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: resolved) } catch {
            throw APIError(.notFound, code: "file_not_found", "no such image file: \(path)", param: param)
        }
        if attributes[.type] as? FileAttributeType != .typeRegular {
            throw APIError.invalid("invalid_image", "\(path) is not a regular file", param: param)
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        if size > limits.maxImageBytes {
            throw APIError.invalid("image_too_large", "\(path) has \(size) bytes; the limit is \(limits.maxImageBytes)", param: param)
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: resolved)) } catch {
            throw APIError(.notFound, code: "file_not_found", "cannot read \(path): \((error as NSError).localizedDescription)", param: param)
        }
    }

    /// `data:image/jpeg;base64,...` or `data:image/png;base64,...`.
    static func dataURL(_ url: String, param: String, limits: RequestLimits) throws -> Data {
        // the scheme is case-insensitive (RFC 2397); the header starts after its 5 characters
        guard url.utf8.count >= 5, url.prefix(5).lowercased() == "data:" else {
            throw APIError.invalid("invalid_image_url", "not a data: URL (data:image/png;base64,...)", param: param)
        }
        guard let comma = url.firstIndex(of: ",") else {
            throw APIError.invalid("invalid_image_url", "a data: URL needs a comma before its payload (data:image/png;base64,...)", param: param)
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
        let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.contains("base64") else {
            throw APIError.invalid("invalid_image_url", "only base64 data: URLs are accepted (data:image/png;base64,...)", param: param)
        }
        let mediaType = parts.first ?? ""
        guard ["image/jpeg", "image/jpg", "image/png"].contains(mediaType) else {
            throw APIError.invalid("unsupported_image_type", "images must be JPEG or PNG (image/jpeg, image/png), not \(mediaType.isEmpty ? "an unnamed type" : mediaType)", param: param)
        }
        let payload = url[url.index(after: comma)...]
        // 4 base64 characters carry 3 bytes: refuse before decoding
        let estimate = payload.utf8.count / 4 * 3
        if estimate > limits.maxImageBytes + 3 {
            throw APIError.invalid("image_too_large", "the image has about \(estimate) bytes; the limit is \(limits.maxImageBytes)", param: param)
        }
        guard let data = Data(base64Encoded: String(payload)) else {
            throw APIError.invalid("invalid_image", "the data: URL payload is not valid base64", param: param)
        }
        if data.count > limits.maxImageBytes {
            throw APIError.invalid("image_too_large", "the image has \(data.count) bytes; the limit is \(limits.maxImageBytes)", param: param)
        }
        return data
    }

    /// Decodes JPEG/PNG bytes, refusing more than `limits.maxImagePixels` pixels before decoding.
    static func decode(_ data: Data, param: String, limits: RequestLimits) throws -> RGBImage {
        do {
            return try ImageFile.decode(data, name: param, maxPixels: limits.maxImagePixels)
        } catch let error as ImageError {
            let tooBig: Bool
            if case .corrupt(_, let reason) = error { tooBig = reason.contains("over the limit of") } else { tooBig = false }
            throw APIError.invalid(tooBig ? "image_too_many_pixels" : "invalid_image", error.description, param: param)
        }
    }
}

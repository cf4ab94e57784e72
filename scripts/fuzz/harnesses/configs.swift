// libFuzzer: config.json (as a Llama decoder's and as a vision encoder's) and
// preprocessor_config.json (resolved, then used to size and preprocess a small image).
import Backbones
import Foundation

let smallImage = RGBImage(width: 7, height: 5, pixels: [UInt8](repeating: 100, count: 7 * 5 * 3))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Data(bytes: data ?? UnsafePointer(bitPattern: 1)!, count: count)
    if let config = try? JSONDecoder().decode(LlamaConfig.self, from: bytes) {
        _ = try? config.validate()
    }
    _ = scratchFile("config.json", data, count)
    _ = try? VisionCheckpoint.load(scratchDirectory)   // no weights here: the config is what is read
    let path = scratchFile("preprocessor_config.json", data, count)
    if let raw = try? PreprocessorConfig.load(path), let p = try? ImagePreprocessing(raw, path: path) {
        for (w, h) in [(7, 5), (640, 480), (20000, 2), (1, 1)] {
            guard (try? p.check(width: w, height: h, name: "image")) != nil else { continue }
            // preprocess the small image when the resize stays small (a legal 4096-px resize is slow under ASan)
            let out = p.outputSize(height: h, width: w), resized = p.resizedSize(height: h, width: w)
            if w == 7 && out.height * out.width <= 1 << 18 && resized.height * resized.width <= 1 << 18 {
                _ = try? p.batch([smallImage], names: ["image"])
            }
        }
    }
    return 0
}

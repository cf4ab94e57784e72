// libFuzzer: JPEG and PNG decoding (libjpeg/libpng behind the shims, EXIF orientation, alpha),
// then the preprocessing size check and a resize of what decodes.
import Backbones
import Foundation

let preprocessor = try! ImagePreprocessing(PreprocessorConfig(imageProcessorType: "BitImageProcessor"), path: "fuzz")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Data(bytes: data ?? UnsafePointer(bitPattern: 1)!, count: count)
    guard let image = try? ImageFile.decode(bytes, name: "fuzz") else { return 0 }
    if image.width * image.height <= 1 << 20, (try? preprocessor.check(width: image.width, height: image.height, name: "fuzz")) != nil {
        _ = try? preprocessor.batch([image], names: ["fuzz"])
    }
    return 0
}

// libFuzzer: projector files and training checkpoints (safetensors + the projector config and
// trainer state in the metadata).
import Projector
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let path = scratchFile("projector.safetensors", data, count)
    _ = try? Projector.load(path, allowExtra: false)
    if let (projector, _) = try? Projector.load(path, allowExtra: true) {
        _ = try? projector.outputTokens(forFeatureTokens: 257)
    }
    return 0
}

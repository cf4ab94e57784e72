// libFuzzer: the safetensors reader (header JSON, offsets, dtypes) and reading every tensor.
import Backbones
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let path = scratchFile("input.safetensors", data, count)
    guard let file = try? SafetensorsFile(path: path) else { return 0 }
    _ = file.metadata
    let loader = StrictLoader(file)
    for (name, info) in file.tensors where info.elementCount <= maxFloats {
        _ = try? loader.load(name, shape: info.shape)
    }
    try? loader.finish()
    return 0
}

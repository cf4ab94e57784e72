// libFuzzer: the GGUF reader (metadata, tensor table, quantized blocks) and the whole decoder
// load from it (config from metadata, tokenizer from metadata, strict weight loading).
import Backbones
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let path = scratchFile("input.gguf", data, count)
    guard let file = try? GGUFFile(path: path) else { return 0 }
    for (name, info) in file.tensors where info.elementCount <= maxFloats {
        var out = [Float](repeating: 0, count: info.elementCount)
        try? file.readFloats(name, into: &out)
    }
    if let checkpoint = try? LlamaCheckpoint.load(path) {
        let ids = checkpoint.tokenizer.encode("Hello, world! ünïcode 123", addBos: nil, parseSpecial: true)
        _ = checkpoint.tokenizer.decode(ids)
    }
    return 0
}

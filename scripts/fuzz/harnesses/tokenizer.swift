// libFuzzer: tokenizer.json (BPE / byte-level / Metaspace, added tokens, pre-tokenizers,
// post-processor) loaded from a directory, then encoding and decoding with it.
import Backbones
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    _ = scratchFile("tokenizer.json", data, count)
    guard let tokenizer = try? loadTokenizer(directory: scratchDirectory) else { return 0 }
    for text in ["Hello, world!", " ünïcode\t\r\n 😀 12345 <|im_start|>user\n<s></s>", ""] {
        let ids = tokenizer.encode(text, addBos: nil, parseSpecial: true)
        _ = tokenizer.decode(ids, skipSpecial: false)
    }
    _ = tokenizer.decode(Array(0..<64), skipSpecial: true)
    _ = tokenizer.decode([-1, Int.max, 1 << 40], skipSpecial: false)
    return 0
}

// libFuzzer: training data files, JSONL ({image, caption} / {image, question, answer}) and
// LLaVA JSON (conversations), without checking that the images exist.
import Projector
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let path = scratchFile("data.jsonl", data, count)
    _ = try? Dataset.load(path, checkImages: false)
    return 0
}

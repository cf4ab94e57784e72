// libFuzzer: the protobuf / ONNX reader (ModelProto, graphs, initializers, attributes).
import Backbones
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Data(bytes: data ?? UnsafePointer(bitPattern: 1)!, count: count)
    _ = try? ONNXModel.parse(ONNXMappedBytes(copying: bytes), path: "fuzz.onnx")
    return 0
}

// How much memory the machine can give: buffers sized from a file or a flag are checked
// against it before they are allocated, so that a request too large fails with a message
// instead of the kernel's OOM killer.
import Foundation

/// MemAvailable from /proc/meminfo in bytes (nil where there is none, e.g. macOS).
public func availableMemoryBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
        let fields = line.split(separator: " ")
        if fields.count >= 2, let kb = Int(fields[1]), kb < Int.max / 1024 { return kb * 1024 }
    }
    return nil
}

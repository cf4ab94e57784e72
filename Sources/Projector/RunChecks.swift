// Checks a training run makes before it commits to anything: which data a checkpoint belongs
// to, how much memory the machine has, and temporaries a killed run left behind.
import Foundation
import Backbones

/// A hash of a training sample list in order: each sample's image content hash and its turns.
/// Two lists with the same fingerprint give the same batches for the same seed.
public func trainingDataFingerprint(_ items: [TrainingItem]) -> String {
    var text = "\(items.count)\u{1}"
    for item in items {
        text += item.hash + "\u{1}"
        for t in item.sample.turns { text += t.user + "\u{2}" + t.assistant + "\u{3}" }
        text += "\u{4}"
    }
    return contentHash(Data(text.utf8))
}

/// Removes `.NAME.tmp-PID-RANDOM` files (what an atomic write leaves when its process is killed
/// mid-write) in `directory` whose process no longer runs. Returns the names removed.
@discardableResult
public func removeStaleTemporaries(in directory: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    var removed: [String] = []
    for name in names where name.hasPrefix(".") {
        guard let r = name.range(of: ".tmp-", options: .backwards) else { continue }
        let pidText = name[r.upperBound...].split(separator: "-").first ?? ""
        guard let pid = Int32(pidText), pid > 0 else { continue }
        if pid != getpid() && kill(pid, 0) == 0 { continue }    // a live writer (another run) owns it
        if pid == getpid() || errno == ESRCH {
            if (try? FileManager.default.removeItem(atPath: directory + "/" + name)) != nil { removed.append(name) }
        }
    }
    return removed
}

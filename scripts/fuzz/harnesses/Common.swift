// Shared by every libFuzzer harness (compiled into each one): the readers take paths, so each
// input is written to one scratch file per process, on /dev/shm when there is one.
import Foundation

/// The scratch directory of this process.
let scratchDirectory: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let dir = base + "/vlm-fuzz-\(getpid())"
    mkdir(dir, 0o700)
    atexit { try? FileManager.default.removeItem(atPath: "/dev/shm/vlm-fuzz-\(getpid())") }
    return dir
}()

/// Writes the input to `scratchDirectory/name` and returns its path.
func scratchFile(_ name: String, _ data: UnsafePointer<UInt8>?, _ count: Int) -> String {
    let path = scratchDirectory + "/" + name
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    if fd >= 0 {
        var done = 0
        while done < count, let data { let n = write(fd, data + done, count - done); if n <= 0 { break }; done += n }
        close(fd)
    }
    return path
}

/// At most this many floats are read from one tensor (the header may promise anything).
let maxFloats = 1 << 20

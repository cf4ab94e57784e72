// A Hugging Face checkpoint presented as one tensor store: a single .safetensors file, or a
// directory holding model.safetensors, or shards model-0000N-of-0000M.safetensors listed by
// model.safetensors.index.json ({"weight_map": {tensor: shard file}}), or a single *.safetensors.
// The index must agree exactly with the shards: every tensor it lists is in the shard it names,
// and every tensor of every shard is listed there. Shard names are plain file names (no paths).

#if canImport(Glibc)
import Kernels
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One or more safetensors files read as one store.
public final class SafetensorsCheckpoint: TensorStore, @unchecked Sendable {
    /// The file or directory path, named in errors about the checkpoint as a whole.
    public let path: String
    /// Every tensor of every shard by name.
    public let tensors: [String: TensorInfo]
    /// The files, in shard-name order.
    public let shards: [SafetensorsFile]
    /// Index into `shards` of each tensor's file.
    private let shardOf: [String: Int]

    /// Opens a file, or a checkpoint directory as described above.
    public init(path: String) throws {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        if !isDirectory {
            let file = try SafetensorsFile(path: path)
            shards = [file]
            tensors = file.tensors
            shardOf = Dictionary(uniqueKeysWithValues: file.tensors.keys.map { ($0, 0) })
            return
        }
        let entries = try SafetensorsCheckpoint.listDirectory(path)
        let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
        let singles = entries.filter { $0.hasSuffix(".safetensors") }
        let indexName: String?
        if entries.contains("model.safetensors.index.json") {
            indexName = "model.safetensors.index.json"
        } else if entries.contains("model.safetensors") {
            indexName = nil
        } else if indexes.count == 1 {
            indexName = indexes[0]
        } else if indexes.count > 1 {
            throw WeightError.checkpoint(path: path, reason: "several index files (\(indexes.joined(separator: ", "))) and no model.safetensors.index.json; keep only the one for this model")
        } else {
            indexName = nil
        }
        guard let indexName else {
            let single: String
            if entries.contains("model.safetensors") {
                single = "model.safetensors"
            } else if singles.count == 1 {
                single = singles[0]
            } else if singles.isEmpty {
                throw WeightError.checkpoint(path: path, reason: "no .safetensors file in the directory")
            } else {
                throw WeightError.checkpoint(path: path, reason: "several .safetensors files (\(singles.joined(separator: ", "))) but no model.safetensors.index.json to say how they fit together; pass one file's path instead")
            }
            let file = try SafetensorsFile(path: path + "/" + single)
            shards = [file]
            tensors = file.tensors
            shardOf = Dictionary(uniqueKeysWithValues: file.tensors.keys.map { ($0, 0) })
            return
        }

        // Sharded: read the index, then check it against every shard.
        let indexPath = path + "/" + indexName
        let weightMap = try SafetensorsCheckpoint.readWeightMap(indexPath)
        let shardNames = Set(weightMap.values).sorted()
        var shards: [SafetensorsFile] = []
        var shardOf: [String: Int] = [:]
        var tensors: [String: TensorInfo] = [:]
        for (k, shardName) in shardNames.enumerated() {
            let file = try SafetensorsFile(path: path + "/" + shardName)
            for (name, info) in file.tensors {
                guard let listed = weightMap[name] else {
                    throw WeightError.checkpoint(path: indexPath, reason: "tensor '\(name)' is in shard \(shardName) but not in the index's weight_map")
                }
                guard listed == shardName else {
                    throw WeightError.checkpoint(path: indexPath, reason: "tensor '\(name)' is in shard \(shardName) but the index maps it to \(listed)")
                }
                tensors[name] = info
                shardOf[name] = k
            }
            shards.append(file)
        }
        if let missing = weightMap.keys.sorted().first(where: { tensors[$0] == nil }) {
            throw WeightError.checkpoint(path: indexPath, reason: "the index maps tensor '\(missing)' to \(weightMap[missing] ?? ""), which does not contain it")
        }
        self.shards = shards
        self.shardOf = shardOf
        self.tensors = tensors
    }

    /// The file holding tensor `name`.
    public func file(for name: String) throws -> SafetensorsFile {
        guard let k = shardOf[name] else { _ = try info(name); throw WeightError.tensorNotFound(path: path, name: name, closest: []) }
        return shards[k]
    }

    /// The `__metadata__` of the first shard (the one transformers writes the format key into).
    public var metadata: [String: String] { shards.first?.metadata ?? [:] }

    /// Converts tensor `name` (from whichever shard holds it) to float32 into `destination`.
    public func readFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        try file(for: name).readFloats(name, into: destination)
    }

    /// Calls `body` with the stored bytes of tensor `name`, without copying (see `SafetensorsFile`).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try file(for: name).withRawBytes(name, body)
    }

    // MARK: - helpers

    private static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Reads `weight_map` from an index file, checking it is a map of tensor names to plain shard
    /// file names.
    private static func readWeightMap(_ indexPath: String) throws -> [String: String] {
        let file = try MappedFile(path: indexPath)
        let json: JSONValue
        do {
            json = try StrictJSONParser.parse(UnsafeRawBufferPointer(start: file.base, count: file.size))
        } catch {
            throw WeightError.checkpoint(path: indexPath, reason: "invalid JSON at byte \(error.offset): \(error.message)")
        }
        guard case .object(let top) = json else { throw WeightError.checkpoint(path: indexPath, reason: "not a JSON object") }
        guard let mapValue = top.first(where: { $0.key == "weight_map" })?.value else {
            throw WeightError.checkpoint(path: indexPath, reason: "no \"weight_map\" key")
        }
        guard case .object(let pairs) = mapValue else {
            throw WeightError.checkpoint(path: indexPath, reason: "\"weight_map\" is \(mapValue.kind), expected an object")
        }
        var map: [String: String] = [:]
        for member in pairs {
            let (name, v) = (member.key, member.value)
            guard case .string(let shard) = v else {
                throw WeightError.checkpoint(path: indexPath, reason: "weight_map entry '\(name)' is \(v.kind), expected a file name")
            }
            guard !shard.isEmpty, shard != ".", shard != "..", !shard.contains("/"), !shard.contains("\0") else {
                throw WeightError.checkpoint(path: indexPath, reason: "weight_map entry '\(name)' names '\(shard)', which is not a plain file name in the checkpoint directory")
            }
            map[name] = shard
        }
        return map
    }
}

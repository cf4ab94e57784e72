import ArgumentParser
import Backbones
import Foundation
import Kernels
import Projector

/// `vlm precompute`: run the frozen vision encoder once over every image of the data files and
/// cache the features for training.
struct Precompute: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode every image of a data file once into a feature cache for training.",
        discussion: "The cache is a directory of safetensors shards keyed by each image's content hash, plus cache.json naming the vision model and layer. Resumable: run it again and only images not yet cached are encoded. Training refuses a cache made by another vision model or layer.")

    @OptionGroup var visionOptions: VisionOptions

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Data file (JSONL or LLaVA JSON); repeat for train and validation files.", valueName: "file"))
    var data: [String]

    @Option(name: .long, help: ArgumentHelp("Cache directory.", valueName: "dir"))
    var out: String

    @Option(name: .long, parsing: .unconditional, help: "Vision layer: an hidden_states index such as -2, or final.")
    var layer: VisionFeatureLayer = .hidden(-2)

    @Option(name: .long, help: "Storage type: f16 (half the disk) or f32.")
    var dtype: CacheDType = .f16

    @Option(name: .long, help: "Images per vision forward.")
    var batch: Int = 8

    @Option(name: .long, help: "Images per cache shard (each shard is written atomically).")
    var shard: Int = 256

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if data.isEmpty { throw ValidationError("give at least one --data file") }
        if batch < 1 || shard < 1 { throw ValidationError("--batch and --shard must be at least 1") }
    }

    func run() throws {
        compute.applyThreads()
        let visionPath = try visionOptions.resolvedPath()
        let vit = try VisionCheckpoint.load(visionPath)
        try compute.apply(to: vit)
        let preprocessor = try visionOptions.preprocessing(for: vit, directory: visionPath)
        let id = try checkpointIdentity(visionPath)
        let size = preprocessor.outputSize(height: vit.config.imageSize, width: vit.config.imageSize)
        let info = FeatureCacheInfo(visionModel: id.name, visionHash: id.hash, layer: layer.description,
                                    tokens: vit.config.tokens(height: size.height, width: size.width), width: vit.config.width,
                                    prefixTokens: vit.config.prefixTokens, dtype: dtype.rawValue.uppercased(),
                                    imageSize: visionOptions.imageSize)
        // an MPI job: rank 0 creates the cache (cache.json, once) before the others open it
        let world = MPICollective.world
        var opened: FeatureCache? = world.isRoot ? try FeatureCache.prepare(directory: out, info: info) : nil
        try world.barrier()
        if opened == nil { opened = try FeatureCache.prepare(directory: out, info: info) }
        let cache = opened!
        // unique images by content
        var todo: [(hash: String, path: String)] = []
        var seen = Set<String>()
        for file in data {
            for sample in try Dataset.load(file) {
                let hash = try contentHash(ofFile: sample.image)
                if seen.insert(hash).inserted && !cache.contains(hash) { todo.append((hash, sample.image)) }
            }
        }
        printError("precompute: \(seen.count) distinct images, \(seen.count - todo.count) already cached, \(todo.count) to encode with \(id.name) layer \(layer)")
        guard !todo.isEmpty else { return }
        // every rank has listed the same images before any writes a shard
        try world.barrier()
        // the k-th run of --batch images goes to rank k mod N: each rank encodes exactly the vision
        // batches a single process would (same images together, so the same features), and writes
        // its own shards (features-rR-*)
        var mine: [(hash: String, path: String)] = []
        for k in stride(from: 0, to: todo.count, by: batch) where (k / batch) % world.size == world.rank {
            mine += todo[k..<min(k + batch, todo.count)]
        }
        let writer: Int? = world.isParallel ? world.rank : nil
        if world.isParallel { printError("precompute: \(world.size) ranks, \(mine.count) images on rank 0") }
        let progress = ProgressBar(total: mine.count)
        let perImage = info.tokens * info.width
        var pending: [(hash: String, features: [Float])] = []
        var done = 0
        var i = 0
        while i < mine.count {
            let chunk = Array(mine[i..<min(i + batch, mine.count)])
            i += chunk.count
            let images = try chunk.map { try ImageFile.read($0.path) }
            let pixels = try preprocessor.batch(images, names: chunk.map(\.path))
            let features = try vit.forward(pixels: pixels.pixels.readable, count: chunk.count, height: pixels.height, width: pixels.width,
                                           layer: layer)
            for (b, item) in chunk.enumerated() {
                pending.append((item.hash, Array(UnsafeBufferPointer(start: features.pointer + b * perImage, count: perImage))))
            }
            if pending.count >= shard {
                try cache.writeShard(pending, writer: writer)
                pending = []
            }
            done += chunk.count
            if world.isRoot { progress.update(done, failed: 0) }
        }
        try cache.writeShard(pending, writer: writer)
        if world.isParallel {
            // every rank's shards are on disk: rank 0 checks the whole cache
            try world.barrier()
            if world.isRoot {
                let whole = try FeatureCache(directory: out, expecting: info)
                let absent = todo.filter { !whole.contains($0.hash) }
                if let first = absent.first {
                    throw FeatureCacheError.missing(path: out, image: first.path, hash: first.hash)
                }
                printError("precompute: \(whole.count) images cached in \(out)")
            }
            return
        }
        printError("precompute: \(cache.count) images cached in \(out)")
    }
}

// `vlm serve`: the OpenAI-compatible local server and its web page (Sources/Server).
import ArgumentParser
import Foundation
import Inference
import Server

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over HTTP: an OpenAI-compatible API and a web page to try it in.",
        discussion: """
        Endpoints: GET / (the page), GET /health, GET /v1/models, POST /v1/chat/completions (image_url \
        parts as data: URLs, "stream": true for server-sent events), POST /v1/completions (text only), \
        POST /v1/score (swift-vlm's extension: {"prompt", "candidates", "image"?, "softmax"?} ranks the \
        candidates by log-likelihood, as `vlm score` does). The model is loaded once; --parallel \
        sequences decode at once (each with its own KV cache of --context positions) and up to --queue \
        more wait; a full queue answers 503 with Retry-After. One JSON access-log line per request goes \
        to stderr.
        """)

    @OptionGroup var model: VLMOptions

    @Option(name: .long, help: "Address to bind. Anything but loopback exposes the model to the network: use --api-key.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port (0 picks a free one and prints it).")
    var port = 8080

    @Option(name: .long, help: "Sequences decoded at the same time (each holds its own KV cache).")
    var parallel = 1

    @Option(name: .long, help: "Requests that may wait for a free sequence; more get 503 with Retry-After.")
    var queue = 8

    @Option(name: .long, help: "Context positions per sequence (prompt, image rows and answer).")
    var context = 2048

    @Option(name: .customLong("api-key"), help: "Require `Authorization: Bearer <key>` on /v1/* (default: $VLM_API_KEY, else none).")
    var apiKey: String?

    @Option(name: .customLong("allow-files"), help: ArgumentHelp("Accept image_url file paths (file:///... or /...) inside this directory only.", valueName: "dir"))
    var allowFiles: String?

    @Option(name: .customLong("model-name"), help: "The model id /v1/models reports.")
    var modelName = "swift-vlm"

    @Option(name: .customLong("max-tokens-limit"), help: "Largest max_tokens a request may ask for.")
    var maxTokensLimit = 1024

    @Option(name: .customLong("max-body-mb"), help: "Largest request body, in MiB.")
    var maxBodyMB = 16

    @Option(name: .customLong("max-image-mb"), help: "Largest image (after base64 decoding), in MiB.")
    var maxImageMB = 8

    @Option(name: .customLong("max-image-pixels"), help: "Largest image in pixels (width × height), checked before decoding.")
    var maxImagePixels: UInt64 = 40_000_000

    func validate() throws {
        if parallel < 1 { throw ValidationError("--parallel must be at least 1") }
        if queue < 0 { throw ValidationError("--queue must be 0 or more") }
        if context < 64 { throw ValidationError("--context must be at least 64") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535") }
        if maxTokensLimit < 1 { throw ValidationError("--max-tokens-limit must be at least 1") }
        if maxBodyMB < 1 || maxImageMB < 1 || maxImagePixels < 1 { throw ValidationError("the size limits must be at least 1") }
        if let dir = allowFiles {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("--allow-files \(dir): no such directory")
            }
        }
    }

    func run() throws {
        let vlm = try model.load()
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["VLM_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        config.allowedFiles = allowFiles.map { URL(fileURLWithPath: $0) }
        config.modelName = modelName
        config.limits.maxTokens = maxTokensLimit
        config.limits.defaultMaxTokens = min(256, maxTokensLimit)
        config.limits.maxBodyBytes = maxBodyMB << 20
        config.limits.maxImageBytes = maxImageMB << 20
        config.limits.maxImagePixels = maxImagePixels
        let loopback = ["127.0.0.1", "localhost", "::1"].contains(host) || host.hasPrefix("127.")
        if !loopback && config.apiKey == nil {
            printError("warning: serving on \(host) without --api-key: anyone who can reach this address can use the model")
        }
        let engine = InferenceEngine(vlm: vlm, parallel: parallel, queue: queue, contextLength: context)
        let server = VLMServer(engine: engine, configuration: config)
        let host = self.host
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: (any Error)?
        Task {
            do {
                try await server.run(stopOnSignals: true) { port in
                    let shown = host.contains(":") ? "[\(host)]" : host
                    printError("vlm serve: listening on http://\(shown):\(port)/ (parallel \(engine.parallel), queue \(engine.queueCapacity), context \(engine.contextLength))")
                }
            } catch { failure = error }
            done.signal()
        }
        done.wait()
        engine.shutdown()
        if let failure { throw CLIError(description: "vlm serve: \(failure)") }
    }
}

// `vlm serve`: an OpenAI-compatible HTTP server (Hummingbird 2) in front of one loaded model.
//
//   GET  /                      the web page (WebPage.swift)
//   GET  /health                {"status": "ok", ...} and the queue's load; no API key needed
//   GET  /v1/models             the one model
//   POST /v1/chat/completions   OpenAI chat, image_url parts (data: URLs; files with --allow-files), SSE with "stream"
//   POST /v1/completions        raw text continuation (no image), SSE with "stream"
//   POST /v1/score              swift-vlm's extension: the log-likelihood ranking of `vlm score`
//
// Every error is JSON in OpenAI's shape {"error": {"message", "type", "param", "code"}}. One
// access-log line (JSON) per request: id, method, path, status, latency, tokens.

import Backbones
import Foundation
import HTTPTypes
import Hummingbird
import Inference
import Logging
import NIOCore
import ServiceLifecycle

public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (reported to `onStarted`).
    public var port = 8080
    /// When set, /v1/* requests need `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Image paths (file:// or absolute) are read only from inside this directory.
    public var allowedFiles: URL?
    /// The id /v1/models reports and responses carry.
    public var modelName = "swift-vlm"
    public var limits = RequestLimits()
    public init() {}
}

/// What one request did, filled in by its handler and written by the access log.
final class RequestRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var _promptTokens: Int?
    private var _completionTokens: Int?
    private var _finish: String?
    private var _error: String?
    func set(promptTokens: Int?, completionTokens: Int?, finish: String?) {
        lock.lock(); _promptTokens = promptTokens; _completionTokens = completionTokens; _finish = finish; lock.unlock()
    }
    func set(error: String) { lock.lock(); _error = error; lock.unlock() }
    var snapshot: (prompt: Int?, completion: Int?, finish: String?, error: String?) {
        lock.lock(); defer { lock.unlock() }
        return (_promptTokens, _completionTokens, _finish, _error)
    }
}

struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel
    let record = RequestRecord()
    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
    /// Bodies are read by the handlers with the server's own limit.
    var maxUploadSize: Int { 0 }
}

public final class VLMServer: Sendable {
    public let engine: InferenceEngine
    public let configuration: ServerConfiguration
    let accessLog: @Sendable (String) -> Void
    let created = Int(Date().timeIntervalSince1970)
    private let serviceGroup = LockedValue<ServiceGroup?>(nil)

    /// `accessLog` receives one JSON line per request (default: standard error).
    public init(engine: InferenceEngine, configuration: ServerConfiguration,
                accessLog: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.engine = engine
        self.configuration = configuration
        self.accessLog = accessLog
    }

    /// Serves until `stop()` (or, with `stopOnSignals`, SIGINT/SIGTERM), then lets the requests
    /// in flight finish; `onStarted` receives the bound port.
    public func run(stopOnSignals: Bool = false, onStarted: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        var logger = Logger(label: "vlm-serve")
        logger.logLevel = .warning
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(additionalChannelHandlers: [CloseOnInputClosed()])),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "swift-vlm"),
            onServerRunning: { channel in await onStarted(channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: stopOnSignals ? [.sigterm, .sigint] : [],
                                                      logger: logger))
        serviceGroup.set(group)
        try await group.run()
    }

    /// Stops `run` gracefully: no new connections; requests in flight finish.
    public func stop() async {
        await serviceGroup.get()?.triggerGracefulShutdown()
    }

    func makeRouter() -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        router.add(middleware: AccessLogMiddleware(log: accessLog))
        router.add(middleware: ErrorMiddleware(apiKey: configuration.apiKey))
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                     body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
        router.get("/health") { [self] _, _ in
            let load = engine.load
            return json(Health(status: "ok", model: configuration.modelName, parallel: engine.parallel, queue: engine.queueCapacity,
                               running: load.running, waiting: load.waiting, completed: load.completed, context: engine.contextLength,
                               imageTokens: engine.vlm.imageTokens, maxTokens: configuration.limits.maxTokens,
                               maxBodyBytes: configuration.limits.maxBodyBytes, apiKeyRequired: configuration.apiKey != nil))
        }
        router.get("/v1/models") { [self] _, _ in
            json(ModelList(data: [.init(id: configuration.modelName, created: created)]))
        }
        router.post("/v1/chat/completions") { [self] request, context in try await chatCompletions(request, context) }
        router.post("/v1/completions") { [self] request, context in try await completions(request, context) }
        router.post("/v1/score") { [self] request, context in try await score(request, context) }
        return router
    }

    // MARK: request bodies

    /// The body as JSON bytes: application/json only, at most `maxBodyBytes`.
    func jsonBody(_ request: Request) async throws -> Data {
        let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/json" else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type",
                           "Content-Type must be application/json, not \(type.map { "\"\($0)\"" } ?? "absent")")
        }
        let limit = configuration.limits.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(.contentTooLarge, code: "request_too_large", "the request body has \(length) bytes; the limit is \(limit)")
        }
        do {
            var buffer = try await request.body.collect(upTo: limit)
            return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, code: "request_too_large", "the request body is over the limit of \(limit) bytes")
        }
    }

    /// Runs CPU-bound request preparation (JSON decoding, tokenization, prompt building) on a
    /// Dispatch worker instead of the event loop or Swift's cooperative pool, which must never
    /// block: a large prompt then stalls no other connection. (The tokenizers are safe to share:
    /// immutable after loading, their caches locked.)
    func offloaded<T>(_ work: @escaping () throws -> T) async throws -> T {
        let job = UncheckedSendable(value: work)
        let result: UncheckedSendable<T> = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { UncheckedSendable(value: try job.value()) }) }
        }
        return result.value
    }

    /// Reads and decodes an image off the event loops.
    func loadImage(url: String, param: String) async throws -> RGBImage {
        let limits = configuration.limits, allowed = configuration.allowedFiles
        return try await offloaded {
            try ImageInput.decode(try ImageInput.bytes(of: url, param: param, limits: limits, allowedFiles: allowed), param: param, limits: limits)
        }
    }

    // MARK: /v1/chat/completions

    func chatCompletions(_ request: Request, _ context: ServerContext) async throws -> Response {
        let data = try await jsonBody(request)
        let limits = configuration.limits
        let (body, params, conversation) = try await offloaded {
            let body = try JSONCoding.decode(ChatCompletionRequest.self, from: data)
            let params = try GenerationParameters(try JSONCoding.decode(SamplingFields.self, from: data), limits: limits)
            return (body, params, try Conversation(body.messages, limits: limits))
        }
        let vlm = engine.vlm
        let work: GenerationWork
        if let image = conversation.image {
            let prompt = try await offloaded { try conversation.imagePrompt(vlm) }
            let promptTokens = prompt.prefix.count + vlm.imageTokens + prompt.suffix.count
            var options = vlm.generationOptions(maxTokens: try params.budget(promptTokens: promptTokens, context: engine.contextLength),
                                                sampling: params.sampling)
            options.stopStrings += params.stops
            let picture = try await loadImage(url: image.url, param: image.param)
            let engine = self.engine
            work = GenerationWork(promptTokens: promptTokens, trim: true) { slot, onText in
                let start = DispatchTime.now()
                let rows = try engine.encode(picture, name: image.param)
                let visionMs = milliseconds(since: start)
                let result = try vlm.answer(imageRows: rows.readable, prompt: prompt, generator: slot.imageGenerator, options: options, onText: onText)
                return (result, visionMs)
            }
        } else {
            let prompt = try await offloaded { try conversation.textPrompt(vlm) }
            let options = prompt.options(maxTokens: try params.budget(promptTokens: prompt.ids.count, context: engine.contextLength),
                                         sampling: params.sampling, extraStops: params.stops)
            work = GenerationWork(promptTokens: prompt.ids.count, trim: true) { slot, onText in
                (try slot.textGenerator.generate(promptIds: prompt.ids, options: options, onText: onText), 0)
            }
        }
        let id = "chatcmpl-" + context.id
        let model = body.model ?? configuration.modelName
        let (events, cancel) = try start(work, context: context)
        let created = Int(Date().timeIntervalSince1970)

        if !params.stream {
            let outcome = try await collect(events, cancel: cancel, context: context)
            return json(ChatCompletion(id: id, created: created, model: model,
                                       choices: [.init(message: .init(content: outcome.text), finishReason: outcome.finishReason)],
                                       usage: outcome.usage, timings: outcome.timings))
        }
        let includeUsage = params.includeUsage
        return sse(events, cancel: cancel, context: context) { (event: GenerationEvent) -> [ChatCompletionChunk] in
            switch event {
            case .started:
                return [ChatCompletionChunk(id: id, created: created, model: model,
                                            choices: [.init(delta: .init(role: "assistant", content: ""), finishReason: nil)], usage: nil, timings: nil)]
            case .text(let piece):
                return [ChatCompletionChunk(id: id, created: created, model: model,
                                            choices: [.init(delta: .init(role: nil, content: piece), finishReason: nil)], usage: nil, timings: nil)]
            case .finished(let o):
                var chunks = [ChatCompletionChunk(id: id, created: created, model: model,
                                                  choices: [.init(delta: .init(role: nil, content: nil), finishReason: o.finishReason)],
                                                  usage: nil, timings: o.timings)]
                if includeUsage { chunks.append(ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: o.usage, timings: nil)) }
                return chunks
            }
        }
    }

    // MARK: /v1/completions

    func completions(_ request: Request, _ context: ServerContext) async throws -> Response {
        let data = try await jsonBody(request)
        let limits = configuration.limits, decoder = engine.vlm.decoder
        let (body, params, prompt) = try await offloaded {
            let body = try JSONCoding.decode(CompletionRequest.self, from: data)
            let params = try GenerationParameters(try JSONCoding.decode(SamplingFields.self, from: data), limits: limits)
            guard body.prompt.values.count == 1 else {
                throw APIError.invalid("unsupported_prompt", "prompt must be one string (batches of prompts are not supported)", param: "prompt")
            }
            return (body, params, TextPrompt.raw(body.prompt.values[0], checkpoint: decoder))
        }
        guard !prompt.ids.isEmpty else { throw APIError.invalid("empty_prompt", "the prompt encodes to no tokens", param: "prompt") }
        let options = prompt.options(maxTokens: try params.budget(promptTokens: prompt.ids.count, context: engine.contextLength),
                                     sampling: params.sampling, extraStops: params.stops)
        let work = GenerationWork(promptTokens: prompt.ids.count, trim: false) { slot, onText in
            (try slot.textGenerator.generate(promptIds: prompt.ids, options: options, onText: onText), 0)
        }
        let id = "cmpl-" + context.id
        let model = body.model ?? configuration.modelName
        let (events, cancel) = try start(work, context: context)
        let created = Int(Date().timeIntervalSince1970)
        if !params.stream {
            let o = try await collect(events, cancel: cancel, context: context)
            return json(TextCompletion(id: id, created: created, model: model, choices: [.init(text: o.text, finishReason: o.finishReason)],
                                       usage: o.usage, timings: o.timings))
        }
        let includeUsage = params.includeUsage
        return sse(events, cancel: cancel, context: context) { (event: GenerationEvent) -> [TextCompletion] in
            switch event {
            case .started: return []
            case .text(let piece):
                return [TextCompletion(id: id, created: created, model: model, choices: [.init(text: piece, finishReason: nil)], usage: nil, timings: nil)]
            case .finished(let o):
                var chunks = [TextCompletion(id: id, created: created, model: model, choices: [.init(text: "", finishReason: o.finishReason)],
                                             usage: nil, timings: o.timings)]
                if includeUsage { chunks.append(TextCompletion(id: id, created: created, model: model, choices: [], usage: o.usage, timings: nil)) }
                return chunks
            }
        }
    }

    // MARK: /v1/score

    func score(_ request: Request, _ context: ServerContext) async throws -> Response {
        let data = try await jsonBody(request)
        let body = try await offloaded { try JSONCoding.decode(ScoreRequest.self, from: data) }
        let limits = configuration.limits
        guard !body.candidates.isEmpty else { throw APIError.invalid("invalid_candidates", "candidates must hold at least one string", param: "candidates") }
        guard body.candidates.count <= limits.maxCandidates else {
            throw APIError.invalid("too_many_candidates", "at most \(limits.maxCandidates) candidates per request", param: "candidates")
        }
        let vlm = engine.vlm, engine = self.engine
        let picture = try await body.image.asyncMap { try await loadImage(url: $0, param: "image") }
        let (longest, promptTokens) = try await offloaded { () -> (Int, Int) in
            let longest = body.candidates.map { vlm.tokenizer.encode($0, addBos: false, parseSpecial: false).count }.max() ?? 0
            if picture != nil {
                let p = try vlm.prompt(question: body.prompt)
                return (longest, p.prefix.count + vlm.imageTokens + p.suffix.count)
            }
            let n = TextPrompt.raw(body.prompt, checkpoint: vlm.decoder).ids.count
            guard n > 0 else { throw APIError.invalid("empty_prompt", "scoring without an image needs a prompt that encodes to at least one token", param: "prompt") }
            return (longest, n)
        }
        if promptTokens + longest + 1 > vlm.model.ropePositions {
            throw APIError.invalid("context_length_exceeded", "prompt and longest candidate take \(promptTokens + longest) tokens; the model holds \(vlm.model.ropePositions)", param: "candidates")
        }
        let cancel = CancelFlag(probe: { [channel = context.channel] in !channel.isActive })
        let results: [ScoreResult] = try await withCheckedThrowingContinuation { continuation in
            do {
                try engine.submit(cancel: cancel, skipped: { continuation.resume(throwing: CancellationError()) }) { _ in
                    let result = Result<[ScoreResult], any Error> {
                        if let picture {
                            let rows = try engine.encode(picture, name: "image")
                            return try vlm.score(imageRows: rows.readable, prompt: body.prompt, candidates: body.candidates)
                        }
                        return try Scoring.score(checkpoint: vlm.decoder, prompt: body.prompt, candidates: body.candidates)
                    }
                    return { continuation.resume(with: result) }
                }
            } catch { continuation.resume(throwing: error) }
        }
        let probabilities = body.softmax == true ? Scoring.softmax(results.map(\.logprob)) : nil
        let scored = results.reduce(0) { $0 + $1.tokens }
        context.record.set(promptTokens: promptTokens, completionTokens: scored, finish: nil)
        return json(ScoreResponse(model: body.model ?? configuration.modelName,
                                  results: results.enumerated().map { i, r in
                                      .init(candidate: body.candidates[i], logprob: r.logprob, tokens: r.tokens, probability: probabilities?[i])
                                  },
                                  usage: Usage(promptTokens: promptTokens, completionTokens: scored)))
    }

    // MARK: running generations

    /// Queues `work`; the returned stream yields .started, the text pieces, then .finished (or throws).
    func start(_ work: GenerationWork, context: ServerContext) throws -> (AsyncThrowingStream<GenerationEvent, any Error>, CancelFlag) {
        let cancel = CancelFlag(probe: { [channel = context.channel] in !channel.isActive })
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        continuation.onTermination = { reason in if case .cancelled = reason { cancel.cancel() } }
        let queued = DispatchTime.now()
        try engine.submit(cancel: cancel, skipped: { continuation.finish(throwing: CancellationError()) }) { slot in
            let queueMs = milliseconds(since: queued)
            continuation.yield(.started)
            var trimmer = TrimmedPieces()
            do {
                let (result, visionMs) = try work.run(slot) { piece in
                    let out = work.trim ? trimmer.push(piece) : piece
                    if !out.isEmpty { continuation.yield(.text(out)) }
                    return !cancel.isCancelled
                }
                let finish: String
                switch result.stopReason {
                case .endOfSequence, .stopString: finish = "stop"
                case .maxTokens, .contextFull: finish = "length"
                case .cancelled: finish = "cancelled"
                }
                let outcome = Outcome(
                    text: result.text, finishReason: finish,
                    usage: Usage(promptTokens: work.promptTokens, completionTokens: result.newIds.count),
                    timings: Timings(queueMs: queueMs, visionMs: visionMs, prefillMs: result.prefillMilliseconds, decodeMs: result.decodeMilliseconds))
                return { continuation.yield(.finished(outcome)); continuation.finish() }
            } catch {
                return { continuation.finish(throwing: error) }
            }
        }
        return (stream, cancel)
    }

    /// Waits for the whole answer (a non-streaming request); a disconnect cancels it.
    func collect(_ events: AsyncThrowingStream<GenerationEvent, any Error>, cancel: CancelFlag, context: ServerContext) async throws -> Outcome {
        do {
            for try await event in events {
                if case .finished(let o) = event {
                    context.record.set(promptTokens: o.usage.promptTokens, completionTokens: o.usage.completionTokens, finish: o.finishReason)
                    return o
                }
            }
        } catch {
            cancel.cancel()
            throw APIError.fromGeneration(error)
        }
        throw APIError(.internalServerError, type: "server_error", code: "no_result", "generation ended without a result")
    }

    /// A server-sent-events response: `chunks` turns each event into `data: {...}` lines; `data: [DONE]` ends it.
    func sse<Chunk: Encodable>(_ events: AsyncThrowingStream<GenerationEvent, any Error>, cancel: CancelFlag, context: ServerContext,
                               chunks: @escaping @Sendable (GenerationEvent) -> [Chunk]) -> Response {
        let record = context.record
        let body = ResponseBody { writer in
            do {
                do {
                    for try await event in events {
                        if case .finished(let o) = event {
                            record.set(promptTokens: o.usage.promptTokens, completionTokens: o.usage.completionTokens, finish: o.finishReason)
                        }
                        for chunk in chunks(event) {
                            var line = Data("data: ".utf8)
                            line.append(try JSONCoding.encoder.encode(chunk))
                            line.append(contentsOf: Array("\n\n".utf8))
                            try await writer.write(ByteBuffer(bytes: line))
                        }
                    }
                } catch let error where !(error is CancellationError) && !(error is ChannelError) {
                    // an error after the stream began: one error event in OpenAI's shape, then [DONE]
                    let apiError = APIError.fromGeneration(error)
                    record.set(error: apiError.code ?? apiError.type)
                    var line = Data("data: ".utf8)
                    line.append(apiError.json)
                    line.append(contentsOf: Array("\n\n".utf8))
                    try await writer.write(ByteBuffer(bytes: line))
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                cancel.cancel()   // the client went away: stop generating
                record.set(error: "client_disconnected")
                // the worker stops at its next token; wait for it, so the log line has its counts
                do {
                    for try await event in events {
                        if case .finished(let o) = event {
                            record.set(promptTokens: o.usage.promptTokens, completionTokens: o.usage.completionTokens, finish: o.finishReason)
                        }
                    }
                } catch {}
                throw error
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
                        body: body)
    }

    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONCoding.encoder.encode(value)) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

// MARK: generation plumbing

final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ newValue: Value) { lock.lock(); value = newValue; lock.unlock() }
}

/// A generation to run on a sequence slot: returns the result and the vision encoder's milliseconds.
/// A value handed between threads by code that guarantees the hand-over is safe (here: request
/// preparation that runs on one Dispatch worker while the handler awaits it).
struct UncheckedSendable<T>: @unchecked Sendable { let value: T }

struct GenerationWork: @unchecked Sendable {
    let promptTokens: Int
    /// Trim leading/trailing whitespace of the answer (chat) or keep it (raw completions).
    let trim: Bool
    let run: (SequenceSlot, (String) -> Bool) throws -> (GenerationResult, Double)
}

struct Outcome: Sendable {
    let text: String
    let finishReason: String
    let usage: Usage
    let timings: Timings
}

enum GenerationEvent: Sendable {
    case started
    case text(String)
    case finished(Outcome)
}

struct Health: Encodable {
    let status: String
    let model: String
    let parallel: Int
    let queue: Int
    let running: Int
    let waiting: Int
    let completed: Int
    let context: Int
    let imageTokens: Int
    let maxTokens: Int
    let maxBodyBytes: Int
    let apiKeyRequired: Bool
    enum CodingKeys: String, CodingKey {
        case status, model, parallel, queue, running, waiting, completed, context
        case imageTokens = "image_tokens", maxTokens = "max_tokens", maxBodyBytes = "max_body_bytes", apiKeyRequired = "api_key_required"
    }
}

extension APIError {
    /// A failure while running a request, in OpenAI's shape.
    static func fromGeneration(_ error: any Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as EngineError: return APIError(.serviceUnavailable, type: "server_error", code: "server_busy", e.description)
        case is CancellationError: return APIError(.serviceUnavailable, type: "server_error", code: "cancelled", "the request was cancelled")
        case let e as LlamaError: return APIError.invalid("context_length_exceeded", "\(e)")
        case let e as ImageError: return APIError.invalid("invalid_image", e.description)
        default: return APIError(.internalServerError, type: "server_error", code: "internal_error", "\(error)")
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

func milliseconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
}

// MARK: connections

/// Closes a connection once the client has closed its side. Hummingbird allows half-closed
/// connections, so a client that hangs up mid-request would otherwise look connected until the
/// response is written; closed, it makes `channel.isActive` false, which every generation checks
/// per token (as Go's net/http cancels a request's context when its connection reads EOF).
/// A client that half-closes and still waits for its answer is not served.
final class CloseOnInputClosed: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer   // passes reads through untouched
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }
}

// MARK: middleware

/// Checks the API key on /v1/*, and turns every thrown error into OpenAI's error JSON.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let apiKey: String?

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        do {
            if let apiKey, request.uri.path.hasPrefix("/v1/") {
                let given = request.headers[.authorization] ?? ""
                guard constantTimeEqual(given, "Bearer " + apiKey) else {
                    throw APIError(.unauthorized, type: "authentication_error", code: "invalid_api_key",
                                   given.isEmpty ? "missing API key: send Authorization: Bearer <key>" : "incorrect API key")
                }
            }
            return try await next(request, context)
        } catch {
            let apiError: APIError
            switch error {
            case let e as APIError: apiError = e
            case let e as EngineError:
                if case .queueFull(_, let seconds) = e {
                    apiError = APIError(.serviceUnavailable, type: "server_error", code: "queue_full", e.description, retryAfter: seconds)
                } else {
                    apiError = APIError(.serviceUnavailable, type: "server_error", code: "shutting_down", e.description)
                }
            case let e as HTTPError:
                switch e.status {
                case .notFound: apiError = APIError(.notFound, code: "not_found", "no route \(request.method) \(request.uri.path)")
                case .methodNotAllowed: apiError = APIError(.methodNotAllowed, code: "method_not_allowed", "\(request.method) is not allowed on \(request.uri.path)")
                default: apiError = APIError(e.status, code: nil, e.body ?? e.status.reasonPhrase)
                }
            default: apiError = APIError.fromGeneration(error)
            }
            context.record.set(error: apiError.code ?? apiError.type)
            var headers: HTTPFields = [.contentType: "application/json"]
            if let seconds = apiError.retryAfter { headers[.retryAfter] = String(seconds) }
            return Response(status: apiError.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: apiError.json)))
        }
    }

    func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }
}

/// One JSON line per request: when the handler returns for responses with a known length,
/// after the last byte for streamed ones (whose tokens are only known then).
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let log: @Sendable (String) -> Void

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now()
        let remote = context.channel.remoteAddress?.ipAddress ?? ""
        var response = try await next(request, context)
        response.headers[HTTPField.Name("X-Request-Id")!] = context.id
        let status = Int(response.status.code)
        let (id, method, path) = (context.id, request.method.rawValue, request.uri.path)
        let record = context.record, log = self.log
        @Sendable func write(failed: Bool) {
            let r = record.snapshot
            var entry: [String: Any] = ["time": ISO8601DateFormatter().string(from: Date()), "id": id, "method": method, "path": path,
                                        "status": status, "ms": (milliseconds(since: start) * 10).rounded() / 10, "remote": remote]
            if let p = r.prompt { entry["prompt_tokens"] = p }
            if let c = r.completion { entry["completion_tokens"] = c }
            if let f = r.finish { entry["finish"] = f }
            if let e = r.error ?? (failed ? "client_disconnected" : nil) { entry["error"] = e }
            if let data = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .withoutEscapingSlashes]) {
                log(String(decoding: data, as: UTF8.self))
            }
        }
        let body = response.body
        if body.contentLength != nil {
            write(failed: !context.channel.isActive)
            return response
        }
        response.body = ResponseBody { writer in
            do { try await body.write(writer); write(failed: false) } catch { write(failed: true); throw error }
        }
        return response
    }
}

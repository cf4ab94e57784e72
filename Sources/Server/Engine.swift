// The model behind the server: loaded once, shared by N sequence slots, fed by a bounded queue.
//
// Concurrency, and why it is safe:
// - The decoder (LlamaModel) keeps every activation and the KV cache in a LlamaState; its own
//   fields (weights, rotary tables) are read-only after loading. So each slot owns one
//   LlamaState (allocated once, `contextLength` positions) and N slots decode N sequences at the
//   same time on one model instance, each on its own worker thread.
// - The vision encoder (VisionTransformer) keeps its activations in the model object (one run
//   state, grown on demand): image encoding is serialised by `visionLock`. It is ~0.1 s per image
//   against seconds of decoding, so slots rarely wait for it.
// - Tokenizers are immutable apart from a locked cache (Backbones' Tokenizer contract).
// Worker threads are plain Threads: the forward passes block for milliseconds to seconds and
// must not occupy Swift concurrency's cooperative pool or the event loops.

import Backbones
import Foundation
import Inference
import Kernels

/// A cancellation flag shared by a request's handler and the worker running it. `probe` is
/// asked too (e.g. "has the client's connection closed?"); it must be cheap and thread-safe.
public final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private let probe: @Sendable () -> Bool
    public init(probe: @escaping @Sendable () -> Bool = { false }) { self.probe = probe }
    public var isCancelled: Bool {
        lock.lock(); let v = value; lock.unlock()
        return v || probe()
    }
    public func cancel() { lock.lock(); value = true; lock.unlock() }
}

/// One sequence slot: a KV cache and the generators that use it (one at a time).
public final class SequenceSlot: @unchecked Sendable {   // used by one worker thread at a time
    public let index: Int
    /// (contextLength) positions of KV cache and scratch, allocated once.
    public let state: LlamaState
    /// Stops at the VLM's stop ids (end of turn): image and chat requests.
    public let imageGenerator: Generator
    /// Stops at the checkpoint's own end-of-sequence ids, as `vlm generate` does: raw completions.
    public let textGenerator: Generator

    init(index: Int, vlm: VisionLanguageModel, contextLength: Int) {
        self.index = index
        state = vlm.model.makeState(capacity: contextLength)
        imageGenerator = Generator(model: vlm.model, tokenizer: vlm.tokenizer, eosIds: vlm.stopIds, state: state)
        textGenerator = Generator(model: vlm.model, tokenizer: vlm.tokenizer, eosIds: vlm.decoder.eosIds, state: state)
    }
}

/// Why a request was not queued.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    /// `waiting` requests already wait for a slot; try again after about `retryAfterSeconds`.
    case queueFull(waiting: Int, retryAfterSeconds: Int)
    /// The engine is shutting down.
    case stopped

    public var description: String {
        switch self {
        case .queueFull(let w, let s): return "the server is busy: \(w) requests are already waiting; retry in about \(s) s"
        case .stopped: return "the server is shutting down"
        }
    }
}

/// Counts of the engine's queue, for /health and the access log.
public struct EngineLoad: Sendable, Equatable {
    public var running: Int
    public var waiting: Int
    public var completed: Int
}

public final class InferenceEngine: @unchecked Sendable {
    public let vlm: VisionLanguageModel
    public let parallel: Int
    public let queueCapacity: Int
    public let contextLength: Int

    private struct Job {
        let cancel: CancelFlag
        let run: (SequenceSlot) -> (() -> Void)
        let skipped: () -> Void
    }

    private let condition = NSCondition()
    private var waiting: [Job] = []       // FIFO; guarded by condition
    private var running = 0
    private var completed = 0
    private var stopped = false
    private var meanJobSeconds = 2.0      // moving average, for Retry-After
    private let visionLock = NSLock()
    private var threads: [Thread] = []

    /// `parallel` sequences decode at once; up to `queue` more wait; each slot holds `contextLength` positions.
    public init(vlm: VisionLanguageModel, parallel: Int, queue: Int, contextLength: Int) {
        self.vlm = vlm
        self.parallel = max(1, parallel)
        queueCapacity = max(0, queue)
        self.contextLength = min(vlm.model.ropePositions, max(1, contextLength))
        for i in 0..<self.parallel {
            let slot = SequenceSlot(index: i, vlm: vlm, contextLength: self.contextLength)
            let thread = Thread { self.workerLoop(slot) }   // the workers keep the engine alive until shutdown()
            thread.name = "vlm-sequence-\(i)"
            thread.stackSize = 8 << 20
            threads.append(thread)
        }
        threads.forEach { $0.start() }
    }

    /// Queues `run` for the next free slot. Throws `.queueFull` when `queueCapacity` jobs already
    /// wait. A job whose flag is cancelled before it starts is dropped and `skipped` is called instead.
    /// `run` returns what delivers its result; the engine calls it after releasing the slot, so a
    /// client that sends its next request on receiving the answer finds the slot free.
    public func submit(cancel: CancelFlag, skipped: @escaping () -> Void = {}, _ run: @escaping (SequenceSlot) -> (() -> Void)) throws {
        condition.lock()
        defer { condition.unlock() }
        if stopped { throw EngineError.stopped }
        // Admit while a slot is free or the queue has room.
        if running + waiting.count >= parallel + queueCapacity {
            let ahead = Double(waiting.count + 1) / Double(parallel)
            let seconds = Int((meanJobSeconds * ahead).rounded(.up))
            throw EngineError.queueFull(waiting: waiting.count, retryAfterSeconds: min(120, max(1, seconds)))
        }
        waiting.append(Job(cancel: cancel, run: run, skipped: skipped))
        condition.signal()
    }

    public var load: EngineLoad {
        condition.lock(); defer { condition.unlock() }
        return EngineLoad(running: running, waiting: waiting.count, completed: completed)
    }

    /// Image rows (Tq, C) of one image: the vision encoder runs one image at a time.
    public func encode(_ image: RGBImage, name: String) throws -> FloatBuffer {
        visionLock.lock(); defer { visionLock.unlock() }
        return try vlm.encode(images: [image], names: [name])
    }

    /// Stops the workers after the jobs already running; waiting jobs are skipped.
    public func shutdown() {
        condition.lock()
        stopped = true
        let dropped = waiting
        waiting = []
        condition.broadcast()
        condition.unlock()
        dropped.forEach { $0.skipped() }
    }

    private func workerLoop(_ slot: SequenceSlot) {
        while true {
            condition.lock()
            while waiting.isEmpty && !stopped { condition.wait() }
            if stopped && waiting.isEmpty { condition.unlock(); return }
            let job = waiting.removeFirst()
            running += 1
            condition.unlock()

            let start = DispatchTime.now()
            let deliver = job.cancel.isCancelled ? job.skipped : job.run(slot)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9

            condition.lock()
            running -= 1
            completed += 1
            if !job.cancel.isCancelled { meanJobSeconds = 0.8 * meanJobSeconds + 0.2 * seconds }
            condition.unlock()
            deliver()
        }
    }
}

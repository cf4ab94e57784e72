// `vlm-bench caption [folder] [--threads N]`: `vlm caption` on the embedded default — time to
// first token and decode tokens/s for one image, and images/s captioning a folder of 32 images
// (the 8 sample images, 4 times over, unless a folder is given) with batched vision forwards.
import Backbones
import Foundation
import Inference
import Kernels
import Projector

enum CaptionBench {
    static func run(_ args: [String]) {
        let (folder, threads, _, _) = BenchArguments.parse(args, path: defaultWeights("samples"), repeats: 5)
        do {
            let vlm = try VisionLanguageModel(visionDirectory: defaultWeights("dinov2-vits14"),
                                              projectorPath: defaultWeights("projector/projector.safetensors"),
                                              decoderPath: defaultWeights("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
            let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") }.sorted()
            guard !files.isEmpty else { print("no images in \(folder)"); return }
            var paths = files.map { URL(fileURLWithPath: folder).appendingPathComponent($0).path }
            while paths.count < 32 { paths += paths }
            paths = Array(paths.prefix(32))
            let options = vlm.generationOptions(maxTokens: 32, sampling: SamplingOptions())
            let generator = vlm.makeGenerator(extraCapacity: 32)
            // one image, several times: time to first token = decode + preprocess + ViT + projector + prefill + first sample
            var ttft: [Double] = [], tps: [Double] = []
            for _ in 0..<5 {
                let t = DispatchTime.now()
                let rows = try vlm.encode(images: [try ImageFile.read(paths[0])], names: [paths[0]])
                var first: Double? = nil
                let r = try vlm.answer(imageRows: rows.readable, question: nil, generator: generator, options: options) { _ in
                    if first == nil { first = seconds(since: t) }
                    return true
                }
                ttft.append((first ?? seconds(since: t)) * 1000)
                if r.newIds.count > 1 { tps.append(Double(r.newIds.count - 1) / (r.decodeMilliseconds / 1000)) }
            }
            print(String(format: "caption, one image: time to first token %.0f ms, decode %.1f tokens/s (median of 5, %d threads)", median(ttft), median(tps), threads))
            // a folder of 32, batched vision forwards of 8
            let start = DispatchTime.now()
            var tokens = 0
            var k = 0
            let C = vlm.model.config.hiddenSize
            while k < paths.count {
                let chunk = Array(paths[k..<min(k + 8, paths.count)])
                k += chunk.count
                let rows = try vlm.encode(images: try chunk.map { try ImageFile.read($0) }, names: chunk)
                for b in 0..<chunk.count {
                    tokens += try vlm.answer(imageRows: rows.readable + b * vlm.imageTokens * C, question: nil, generator: generator, options: options).newIds.count
                }
            }
            let s = seconds(since: start)
            print(String(format: "caption, folder of %d images: %.2f images/s (%.1f s, %d tokens generated)", paths.count, Double(paths.count) / s, s, tokens))
        } catch {
            print("caption benchmark failed: \(error)")
        }
    }
}

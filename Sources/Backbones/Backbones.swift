// The frozen backbones in one import: weight formats, tokenizers, images, the vision encoders and
// the Llama-style decoder are separate targets (Package.swift), each importing only the ones
// below it; the projector, inference and the CLI see them all through `import Backbones`.
@_exported import WeightFormats
@_exported import Tokenizers
@_exported import Images
@_exported import VisionEncoders
@_exported import LlamaDecoder

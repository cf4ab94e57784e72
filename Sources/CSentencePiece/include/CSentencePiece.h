// A tiny extern "C" shim over libsentencepiece (Debian: libsentencepiece-dev), so the Swift
// targets never need C++ interop. Every call that can fail returns 0 on success and fills
// `error` (NUL-terminated, at most error_size bytes) otherwise.
#ifndef CSENTENCEPIECE_H
#define CSENTENCEPIECE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct csp_processor csp_processor;

/// Loads a serialized SentencePiece model (the bytes of `tokenizer.model`).
csp_processor *csp_load(const char *bytes, size_t size, char *error, size_t error_size);
void csp_free(csp_processor *p);

/// Encodes UTF-8 text to ids exactly as SentencePieceProcessor::Encode does (no BOS/EOS).
/// Writes up to `capacity` ids and returns the total count through `count`; call again with
/// a larger buffer when *count > capacity.
int csp_encode(const csp_processor *p, const char *text, size_t text_size,
               int32_t *ids, size_t capacity, size_t *count, char *error, size_t error_size);

/// Decodes ids to UTF-8 text. Same buffer protocol as csp_encode, in bytes.
int csp_decode(const csp_processor *p, const int32_t *ids, size_t n,
               char *text, size_t capacity, size_t *length, char *error, size_t error_size);

int32_t csp_vocab_size(const csp_processor *p);
int32_t csp_bos_id(const csp_processor *p);
int32_t csp_eos_id(const csp_processor *p);
int32_t csp_unk_id(const csp_processor *p);
int32_t csp_pad_id(const csp_processor *p);
/// Id of a piece, or the unknown id when absent.
int32_t csp_piece_to_id(const csp_processor *p, const char *piece, size_t size);
/// The piece for an id (a pointer valid while `p` lives), its length through `size`; NULL when out of range.
const char *csp_id_to_piece(const csp_processor *p, int32_t id, size_t *size);
/// 1 for control pieces (<s>, </s>), 0 otherwise.
int csp_is_control(const csp_processor *p, int32_t id);
/// 1 for byte-fallback pieces (<0xNN>), 0 otherwise.
int csp_is_byte(const csp_processor *p, int32_t id);

#ifdef __cplusplus
}
#endif
#endif

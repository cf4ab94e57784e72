// Writes the image rows llama.cpp's libmtmd computes for one image with an mmproj GGUF:
//   mmproj_embd DECODER.gguf MMPROJ.gguf IMAGE OUT.f32   -> OUT.f32: n_tokens x n_embd float32, row-major
// Built against llama.cpp's libllama / libmtmd by scripts/interop/check_mmproj.sh (a peer, not a test dependency).
#include "mtmd_load.h"
#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char ** argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s decoder.gguf mmproj.gguf image out.f32\n", argv[0]); return 2; }
    MtmdLoaded m;
    if (!mtmd_load(argv[1], argv[2], argv[3], m)) return 1;
    llama_model * model = m.model;
    mtmd_context * ctx = m.ctx;
    mtmd_helper_bitmap_wrapper & bw = m.image;
    const char * marker = mtmd_default_marker();
    mtmd_input_text text = { marker, strlen(marker), false, false };
    mtmd_input_chunks * chunks = mtmd_input_chunks_init();
    const mtmd_bitmap * bitmaps[] = { bw.bitmap };
    if (mtmd_tokenize(ctx, chunks, &text, bitmaps, 1) != 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    const int n_embd = llama_model_n_embd_inp(model);
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
        const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks, i);
        if (mtmd_input_chunk_get_type(c) != MTMD_INPUT_CHUNK_TYPE_IMAGE) continue;
        if (mtmd_encode_chunk(ctx, c) != 0) { fprintf(stderr, "encode failed\n"); return 1; }
        const size_t n = mtmd_input_chunk_get_n_tokens(c);
        const float * e = mtmd_get_output_embd(ctx);
        FILE * f = fopen(argv[4], "wb");
        fwrite(e, sizeof(float), n * (size_t) n_embd, f);
        fclose(f);
        printf("%zu %d\n", n, n_embd);
        return 0;
    }
    fprintf(stderr, "no image chunk\n");
    return 1;
}

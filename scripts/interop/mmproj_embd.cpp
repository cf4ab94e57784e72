// Writes the image rows llama.cpp's libmtmd computes for one image with an mmproj GGUF:
//   mmproj_embd DECODER.gguf MMPROJ.gguf IMAGE OUT.f32   -> OUT.f32: n_tokens x n_embd float32, row-major
// Built against llama.cpp's libllama / libmtmd by scripts/interop/check_mmproj.sh (a peer, not a test dependency).
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char ** argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s decoder.gguf mmproj.gguf image out.f32\n", argv[0]); return 2; }
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    mtmd_context_params p = mtmd_context_params_default();
    p.use_gpu = false; p.n_threads = 2; p.print_timings = false; p.warmup = false;
    // flash attention (on by default where supported) casts K and V to F16: keep the vision attention in F32
    p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    mtmd_context * ctx = mtmd_init_from_file(argv[2], model, p);
    if (!ctx) { fprintf(stderr, "cannot load %s\n", argv[2]); return 1; }
    mtmd_helper_bitmap_wrapper bw = mtmd_helper_bitmap_init_from_file(ctx, argv[3], false, mtmd_helper_init_opt_default());
    if (!bw.bitmap) { fprintf(stderr, "cannot read %s\n", argv[3]); return 1; }
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

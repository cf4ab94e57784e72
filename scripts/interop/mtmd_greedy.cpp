// Greedy generation through llama.cpp's libmtmd, the way llama-mtmd-cli runs one image and one
// prompt, printing token ids instead of text (llama-mtmd-cli writes its output through llama.cpp's
// asynchronous log, whose tail can be lost at exit):
//   mtmd_greedy DECODER.gguf MMPROJ.gguf IMAGE PROMPT N
// PROMPT is the whole formatted chat text with libmtmd's media marker where the image goes (e.g.
// "<|im_start|>user\n<__media__>\nWrite ...<|im_end|>\n<|im_start|>assistant\n"), tokenized by
// mtmd_tokenize with special tokens parsed and BOS added where the vocabulary adds it (as
// llama-mtmd-cli's first message). Prints {"prompt_ids": [...], "new_ids": [...]}: the text
// chunks' ids (the image's place as -1) and up to N greedy ids, stopping after an end-of-generation
// id. Flash attention off in both contexts (it rounds K and V to F16). Built by
// scripts/interop/build_mmproj_embd.sh; a peer for scripts/interop/check_mtmd.py, never a test dependency.
#include "mtmd_load.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char ** argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s decoder.gguf mmproj.gguf image prompt n\n", argv[0]); return 2; }
    const int n_predict = atoi(argv[5]);
    MtmdLoaded m;
    if (!mtmd_load(argv[1], argv[2], argv[3], m)) return 1;
    llama_model * model = m.model;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 4096; cp.n_batch = 2048; cp.n_threads = 2; cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * lctx = llama_init_from_model(model, cp);
    if (!lctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    mtmd_context * ctx = m.ctx;
    mtmd_helper_bitmap_wrapper & bw = m.image;
    mtmd_input_text text = { argv[4], strlen(argv[4]), /* add_special */ true, /* parse_special */ true };
    mtmd_input_chunks * chunks = mtmd_input_chunks_init();
    const mtmd_bitmap * bitmaps[] = { bw.bitmap };
    if (mtmd_tokenize(ctx, chunks, &text, bitmaps, 1) != 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    std::string out = "{\"prompt_ids\": [";
    bool first = true;
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
        const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks, i);
        if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
            size_t n = 0;
            const llama_token * t = mtmd_input_chunk_get_tokens_text(c, &n);
            for (size_t j = 0; j < n; j++) { out += (first ? "" : ", ") + std::to_string(t[j]); first = false; }
        } else {
            out += first ? "-1" : ", -1"; first = false;
        }
    }
    llama_pos n_past = 0;
    if (mtmd_helper_eval_chunks(ctx, lctx, chunks, 0, 0, 2048, true, &n_past) != 0) { fprintf(stderr, "eval failed\n"); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int V = llama_vocab_n_tokens(vocab);
    out += "], \"new_ids\": [";
    for (int i = 0; i < n_predict; i++) {
        const float * logits = llama_get_logits_ith(lctx, -1);
        int best = 0;
        for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
        out += (i ? ", " : "") + std::to_string(best);
        if (llama_vocab_is_eog(vocab, best)) break;
        llama_token tok = best;
        llama_batch b = llama_batch_get_one(&tok, 1);
        if (llama_decode(lctx, b) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        n_past++;
    }
    out += "]}";
    printf("%s\n", out.c_str());
    return 0;
}

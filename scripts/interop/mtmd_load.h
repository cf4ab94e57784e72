// Shared by the libmtmd peers (mmproj_embd.cpp, mtmd_greedy.cpp): loads the decoder GGUF, the
// mmproj on 2 CPU threads with flash attention off (it casts K and V to F16: the vision attention
// stays F32) and no warm-up, and one image as libmtmd's helper reads it.
#pragma once
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include <cstdio>

struct MtmdLoaded {
    llama_model * model = nullptr;
    mtmd_context * ctx = nullptr;
    mtmd_helper_bitmap_wrapper image = {};
};

// false (with a message on stderr) when any of the three cannot be loaded
static bool mtmd_load(const char * decoder, const char * mmproj, const char * image, MtmdLoaded & out) {
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    out.model = llama_model_load_from_file(decoder, mp);
    if (!out.model) { fprintf(stderr, "cannot load %s\n", decoder); return false; }
    mtmd_context_params p = mtmd_context_params_default();
    p.use_gpu = false; p.n_threads = 2; p.print_timings = false; p.warmup = false;
    p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    out.ctx = mtmd_init_from_file(mmproj, out.model, p);
    if (!out.ctx) { fprintf(stderr, "cannot load %s\n", mmproj); return false; }
    out.image = mtmd_helper_bitmap_init_from_file(out.ctx, image, false, mtmd_helper_init_opt_default());
    if (!out.image.bitmap) { fprintf(stderr, "cannot read %s\n", image); return false; }
    return true;
}

#include "CPNG.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mem_reader { const uint8_t *data; size_t size; size_t pos; };
struct shim_state { char message[200]; };

static void shim_read(png_structp png, png_bytep dst, png_size_t n) {
    struct mem_reader *r = (struct mem_reader *)png_get_io_ptr(png);
    if (n > r->size - r->pos) png_error(png, "file is truncated: premature end of PNG data");
    memcpy(dst, r->data + r->pos, n);
    r->pos += n;
}

static void shim_error(png_structp png, png_const_charp msg) {
    struct shim_state *s = (struct shim_state *)png_get_error_ptr(png);
    snprintf(s->message, sizeof(s->message), "%s", msg);
    png_longjmp(png, 1);
}

static void shim_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static uint8_t *copy_bytes(const void *src, size_t n) {
    uint8_t *dst = malloc(n ? n : 1);
    if (dst && n) memcpy(dst, src, n);
    return dst;
}

void cpng_release(cpng_image *image) {
    free(image->pixels); image->pixels = NULL;
    free(image->exif); image->exif = NULL; image->exif_size = 0;
    free(image->xmp); image->xmp = NULL; image->xmp_size = 0;
    free(image->raw_exif); image->raw_exif = NULL; image->raw_exif_size = 0;
}

// Copies the orientation-bearing metadata out of `info` (chunks before and after IDAT).
static void collect_metadata(png_structp png, png_infop info, cpng_image *out) {
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 exif_len = 0;
    png_bytep exif = NULL;
    if (!out->exif && png_get_eXIf_1(png, info, &exif_len, &exif) && exif && exif_len > 0) {
        out->exif = copy_bytes(exif, exif_len);
        out->exif_size = out->exif ? exif_len : 0;
    }
#endif
    png_textp text = NULL;
    int count = 0;
    if (png_get_text(png, info, &text, &count) > 0 && text) {
        for (int i = 0; i < count; i++) {
            const char *t = text[i].text;
            if (!t || !text[i].key) continue;
            size_t n = strlen(t);
            if (!out->xmp && strcmp(text[i].key, "XML:com.adobe.xmp") == 0) {
                out->xmp = copy_bytes(t, n); out->xmp_size = out->xmp ? n : 0;
            } else if (!out->raw_exif && strcmp(text[i].key, "Raw profile type exif") == 0) {
                out->raw_exif = copy_bytes(t, n); out->raw_exif_size = out->raw_exif ? n : 0;
            }
        }
    }
}

int cpng_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cpng_image *out) {
    memset(out, 0, sizeof(*out));
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        snprintf(out->error, sizeof(out->error), size == 0 ? "empty file" : "not a PNG file (bad signature)");
        return 1;
    }
    struct shim_state state; memset(&state, 0, sizeof(state));
    struct mem_reader reader = { data, size, 0 };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, shim_error, shim_warning);
    if (!png) { snprintf(out->error, sizeof(out->error), "libpng could not start"); return 1; }
    png_infop info = png_create_info_struct(png);
    if (!info) { png_destroy_read_struct(&png, NULL, NULL); snprintf(out->error, sizeof(out->error), "libpng could not start"); return 1; }

    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        snprintf(out->error, sizeof(out->error), "%s", state.message[0] ? state.message : "corrupt PNG data");
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels); free(rows);
        cpng_release(out);
        return 1;
    }
    png_set_read_fn(png, &reader, shim_read);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color_type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    out->color_type = color_type; out->bit_depth = depth;
    out->has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS);
    out->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    if (w == 0 || h == 0 || (uint64_t)w * (uint64_t)h > max_pixels) {
        snprintf(out->error, sizeof(out->error), "image is %ux%u pixels, over the limit of %llu pixels",
                 (unsigned)w, (unsigned)h, (unsigned long long)max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_filler(png, 0xFF, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 4) png_error(png, "unexpected row layout after expansion");

    pixels = malloc((size_t)w * (size_t)h * 4);
    rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * w * 4;
    png_read_image(png, rows);
    png_read_end(png, info);
    collect_metadata(png, info, out);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->pixels = pixels; out->width = (int)w; out->height = (int)h;
    return 0;
}

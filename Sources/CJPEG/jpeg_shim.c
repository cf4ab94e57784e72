#include "CJPEG.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

struct shim_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int premature_end;
};

static void shim_error_exit(j_common_ptr cinfo) {
    struct shim_error *err = (struct shim_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

// Warnings: the one that matters is "premature end of data", after which libjpeg pads the
// image with gray. We remember it and fail the decode. Other warnings (extraneous bytes
// before a marker, common in real photos) are ignored, as PIL ignores them.
static void shim_emit_message(j_common_ptr cinfo, int level) {
    struct shim_error *err = (struct shim_error *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->premature_end = 1;
        cinfo->err->num_warnings++;
    }
}

static void shim_output_message(j_common_ptr cinfo) { (void)cinfo; }

static uint16_t rd16(const uint8_t *p, int le) { return le ? (uint16_t)(p[0] | (p[1] << 8)) : (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24)
              : ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

// Reads the Orientation tag (0x0112) of IFD0 from an APP1 "Exif\0\0" payload, bounds-checked.
static int exif_orientation(const uint8_t *d, unsigned int len) {
    if (len < 14 || memcmp(d, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *t = d + 6; unsigned int n = len - 6;
    int le;
    if (t[0] == 'I' && t[1] == 'I') le = 1; else if (t[0] == 'M' && t[1] == 'M') le = 0; else return 1;
    if (rd16(t + 2, le) != 42) return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned int count = rd16(t + ifd, le);
    for (unsigned int i = 0; i < count; i++) {
        uint64_t e = (uint64_t)ifd + 2 + 12ull * i;
        if (e + 12 > n) return 1;
        if (rd16(t + e, le) == 0x0112) {
            unsigned int v = rd16(t + e + 8, le);
            return (v >= 1 && v <= 8) ? (int)v : 1;
        }
    }
    return 1;
}

int cjpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cjpeg_image *out) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    if (size == 0) { snprintf(out->error, sizeof(out->error), "empty file"); return 1; }

    struct jpeg_decompress_struct cinfo;
    struct shim_error jerr;
    memset(&jerr, 0, sizeof(jerr));
    cinfo.err = jpeg_std_error(&jerr.base);
    jerr.base.error_exit = shim_error_exit;
    jerr.base.emit_message = shim_emit_message;
    jerr.base.output_message = shim_output_message;

    uint8_t *volatile pixels = NULL;
    JSAMPLE *volatile row = NULL;
    if (setjmp(jerr.jump)) {
        snprintf(out->error, sizeof(out->error), "%s", jerr.message);
        jpeg_destroy_decompress(&cinfo);
        free(pixels); free(row);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);

    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1) { out->orientation = exif_orientation(m->data, m->data_length); if (out->orientation != 1) break; }
    }
    uint64_t pix = (uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height;
    if (cinfo.image_width == 0 || cinfo.image_height == 0 || pix > max_pixels) {
        snprintf(out->error, sizeof(out->error), "image is %ux%u pixels, over the limit of %llu pixels",
                 cinfo.image_width, cinfo.image_height, (unsigned long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    out->source_components = cinfo.num_components;
    out->progressive = cinfo.progressive_mode ? 1 : 0;
    int cmyk = (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK);
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);

    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    pixels = malloc((size_t)w * (size_t)h * 3);
    row = malloc((size_t)w * (size_t)c);
    if (!pixels || !row) {
        snprintf(out->error, sizeof(out->error), "out of memory for %dx%d image", w, h);
        jpeg_destroy_decompress(&cinfo);
        free(pixels); free(row);
        return 1;
    }
    int adobe_inverted = cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rows[1] = { row };
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) break;
        uint8_t *dst = pixels + y * (size_t)w * 3;
        if (c == 3) {
            memcpy(dst, row, (size_t)w * 3);
        } else if (c == 1) {
            for (int x = 0; x < w; x++) { dst[3*x] = dst[3*x+1] = dst[3*x+2] = row[x]; }
        } else { // CMYK: Adobe writes inverted values; PIL's conversion is channel * K / 255 on those.
            for (int x = 0; x < w; x++) {
                int C = row[4*x], M = row[4*x+1], Y = row[4*x+2], K = row[4*x+3];
                if (!adobe_inverted) { C = 255 - C; M = 255 - M; Y = 255 - Y; K = 255 - K; }
                dst[3*x]   = (uint8_t)((C * K + 127) / 255);
                dst[3*x+1] = (uint8_t)((M * K + 127) / 255);
                dst[3*x+2] = (uint8_t)((Y * K + 127) / 255);
            }
        }
    }
    if (jerr.premature_end || cinfo.output_scanline < cinfo.output_height) {
        snprintf(out->error, sizeof(out->error), "file is truncated: premature end of JPEG data");
        jpeg_destroy_decompress(&cinfo);
        free(pixels); free(row);
        return 1;
    }
    jpeg_finish_decompress(&cinfo);
    if (jerr.premature_end) {
        snprintf(out->error, sizeof(out->error), "file is truncated: premature end of JPEG data");
        jpeg_destroy_decompress(&cinfo);
        free(pixels); free(row);
        return 1;
    }
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->pixels = pixels; out->width = w; out->height = h;
    return 0;
}

void cjpeg_free(uint8_t *pixels) { free(pixels); }

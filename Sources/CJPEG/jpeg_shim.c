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
    char message[JMSG_LENGTH_MAX + 64];
    int premature_end;
};

struct shim_progress {
    struct jpeg_progress_mgr base;
    int max_scans;
};

static void shim_error_exit(j_common_ptr cinfo) {
    struct shim_error *err = (struct shim_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

// Warnings: the ones that matter are "premature end of data" (file or scan), after which libjpeg
// pads the image with gray. We remember it and fail the decode. Other warnings (extraneous bytes
// before a marker, common in real photos) are ignored, as Pillow ignores them.
static void shim_emit_message(j_common_ptr cinfo, int level) {
    struct shim_error *err = (struct shim_error *)cinfo->err;
    if (level < 0) {
        // JWRN_JPEG_EOF: the file ends early. JWRN_HIT_MARKER: a scan's entropy data stops at a
        // marker (a cut scan with EOI kept); the rest of the image would be filled with gray.
        if (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER) err->premature_end = 1;
        cinfo->err->num_warnings++;
    }
}

static void shim_output_message(j_common_ptr cinfo) { (void)cinfo; }

// Called by libjpeg while it reads; a progressive file with thousands of tiny scans would
// otherwise keep the decoder busy for minutes on a few kilobytes of input.
static void shim_progress_monitor(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    struct shim_progress *p = (struct shim_progress *)cinfo->progress;
    if (d->input_scan_number > p->max_scans) {
        struct shim_error *err = (struct shim_error *)cinfo->err;
        snprintf(err->message, sizeof(err->message),
                 "progressive JPEG has more than %d scans (refused as a denial-of-service pattern)", p->max_scans);
        longjmp(err->jump, 1);
    }
}

static uint8_t *copy_bytes(const uint8_t *src, size_t n) {
    uint8_t *dst = malloc(n ? n : 1);
    if (dst && n) memcpy(dst, src, n);
    return dst;
}

void cjpeg_release(cjpeg_image *image) {
    free(image->pixels); image->pixels = NULL;
    free(image->exif); image->exif = NULL; image->exif_size = 0;
    free(image->xmp); image->xmp = NULL; image->xmp_size = 0;
}

static const char xmp_namespace[] = "http://ns.adobe.com/xap/1.0/";  // followed by a NUL in the segment

int cjpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, int max_scans, cjpeg_image *out) {
    memset(out, 0, sizeof(*out));
    if (size == 0) { snprintf(out->error, sizeof(out->error), "empty file"); return 1; }

    struct jpeg_decompress_struct cinfo;
    struct shim_error jerr;
    struct shim_progress progress;
    memset(&jerr, 0, sizeof(jerr));
    memset(&progress, 0, sizeof(progress));
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
        cjpeg_release(out);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    progress.base.progress_monitor = shim_progress_monitor;
    progress.max_scans = max_scans;
    cinfo.progress = &progress.base;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);

    // Metadata, as Pillow collects it: the first Exif segment, the last XMP segment.
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1) continue;
        if (!out->exif && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            out->exif = copy_bytes(m->data + 6, m->data_length - 6);
            out->exif_size = out->exif ? m->data_length - 6 : 0;
        } else if (m->data_length > sizeof(xmp_namespace)
                   && memcmp(m->data, xmp_namespace, sizeof(xmp_namespace)) == 0) {  // includes the NUL
            free(out->xmp);
            out->xmp = copy_bytes(m->data + sizeof(xmp_namespace), m->data_length - sizeof(xmp_namespace));
            out->xmp_size = out->xmp ? m->data_length - sizeof(xmp_namespace) : 0;
        }
    }
    uint64_t pix = (uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height;
    if (cinfo.image_width == 0 || cinfo.image_height == 0 || pix > max_pixels) {
        snprintf(out->error, sizeof(out->error), "image is %ux%u pixels, over the limit of %llu pixels",
                 cinfo.image_width, cinfo.image_height, (unsigned long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        cjpeg_release(out);
        return 1;
    }
    out->source_components = cinfo.num_components;
    out->progressive = cinfo.progressive_mode ? 1 : 0;
    int cmyk = (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK);
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);

    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    if ((c != 3 && c != 4) || (cmyk && c != 4)) {
        snprintf(out->error, sizeof(out->error), "unexpected decoder output with %d components", c);
        jpeg_destroy_decompress(&cinfo);
        cjpeg_release(out);
        return 1;
    }
    pixels = malloc((size_t)w * (size_t)h * 3);
    row = malloc((size_t)w * (size_t)c);
    if (!pixels || !row) {
        snprintf(out->error, sizeof(out->error), "out of memory for %dx%d image", w, h);
        jpeg_destroy_decompress(&cinfo);
        free(pixels); free(row);
        cjpeg_release(out);
        return 1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rows[1] = { row };
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) break;
        uint8_t *dst = pixels + y * (size_t)w * 3;
        if (c == 3) {
            memcpy(dst, row, (size_t)w * 3);
        } else {
            // CMYK: stored values taken as Adobe-inverted (C' = 255 - cyan ink, ...). Pillow's
            // cmyk2rgb gives R = K' - round((255 - C') * K' / 255), which equals round(C' * K' / 255)
            // because x / 255 is never exactly halfway for integer x.
            for (int x = 0; x < w; x++) {
                unsigned C = row[4*x], M = row[4*x+1], Y = row[4*x+2], K = row[4*x+3];
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
        cjpeg_release(out);
        return 1;
    }
    jpeg_finish_decompress(&cinfo);
    if (jerr.premature_end) {
        snprintf(out->error, sizeof(out->error), "file is truncated: premature end of JPEG data");
        jpeg_destroy_decompress(&cinfo);
        free(pixels); free(row);
        cjpeg_release(out);
        return 1;
    }
    out->scans = cinfo.input_scan_number;
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->pixels = pixels; out->width = w; out->height = h;
    return 0;
}

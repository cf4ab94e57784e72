// A small C shim over libpng (Debian: libpng-dev). libpng reports errors by longjmp; the
// shim catches them and returns the message, so untrusted files cannot end the process.
#ifndef CPNG_H
#define CPNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *pixels;      // (height, width, 4) RGBA, 8 bits, not premultiplied
    int width;
    int height;
    int color_type;       // PNG colour type of the file (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA)
    int bit_depth;        // bit depth of the file (1, 2, 4, 8, 16)
    int has_alpha;        // 1 when the file carries alpha (an alpha channel or tRNS)
    int interlaced;       // 1 for Adam7
    uint8_t *exif;        // payload of the eXIf chunk (a TIFF structure), or NULL
    size_t exif_size;
    uint8_t *xmp;         // text of the "XML:com.adobe.xmp" iTXt chunk, or NULL
    size_t xmp_size;
    uint8_t *raw_exif;    // text of a "Raw profile type exif" tEXt/zTXt chunk (ImageMagick hex), or NULL
    size_t raw_exif_size;
    char error[200];      // set when cpng_decode returns non-zero
} cpng_image;

/// Decodes a whole PNG held in memory to 8-bit RGBA: palette and low-bit gray expanded,
/// tRNS turned into alpha, 16-bit reduced to its high byte (as Pillow does for RGB and RGBA),
/// interlacing undone, gamma and colour profiles ignored (as Pillow ignores them).
/// Refuses more than `max_pixels` pixels before allocating. Returns 0 on success; otherwise
/// `error` holds a message and every pointer is NULL. On success, release with cpng_release.
int cpng_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cpng_image *out);

/// Frees the buffers held by `image` and sets them to NULL.
void cpng_release(cpng_image *image);

#endif

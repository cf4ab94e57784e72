// A small C shim over libjpeg (Debian: libjpeg-dev, libjpeg62-turbo).
// libjpeg's default error handler calls exit(); this shim installs one that longjmps back
// and returns the library's message instead, so untrusted files can never end the process.
#ifndef CJPEG_H
#define CJPEG_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *pixels;      // (height, width, 3) RGB, row-major
    int width;
    int height;
    int source_components;// 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK
    int progressive;      // 1 when the file is progressive
    int scans;            // number of scans read (1 for baseline)
    uint8_t *exif;        // TIFF payload of the first APP1 "Exif\0\0" segment (prefix removed), or NULL
    size_t exif_size;
    uint8_t *xmp;         // payload of the last APP1 XMP segment (after its namespace and NUL), or NULL
    size_t xmp_size;
    char error[200];      // set when cjpeg_decode returns non-zero
} cjpeg_image;

/// Decodes a whole JPEG held in memory to 8-bit RGB with libjpeg's defaults (integer slow
/// IDCT, fancy upsampling), as Pillow decodes. Grayscale is expanded; CMYK/YCCK is converted
/// the way Pillow converts it: the stored values are taken as Adobe-inverted (Pillow's
/// "CMYK;I" rawmode, whatever the Adobe marker says) and R = round(C' * K' / 255) on those.
/// Refuses images with more than `max_pixels` pixels before allocating, and files with
/// more than `max_scans` scans (a progressive-JPEG denial of service). A file that ends
/// early is an error, not a gray-filled image.
/// Returns 0 on success; otherwise `error` holds a message and every pointer is NULL.
/// On success, release the buffers with cjpeg_release.
int cjpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, int max_scans, cjpeg_image *out);

/// Frees the buffers held by `image` (pixels, exif, xmp) and sets them to NULL.
void cjpeg_release(cjpeg_image *image);

#endif

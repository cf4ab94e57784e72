// A small C shim over libjpeg (Debian: libjpeg-dev, libjpeg62-turbo).
// libjpeg's default error handler calls exit(); this shim installs one that longjmps back
// and returns the library's message instead, so untrusted files can never end the process.
#ifndef CJPEG_H
#define CJPEG_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *pixels;      // (height, width, 3) RGB, row-major; free with cjpeg_free
    int width;
    int height;
    int orientation;      // EXIF orientation tag 1...8 (1 when absent or unreadable)
    int source_components;// 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK
    int progressive;      // 1 when the file is progressive
    char error[200];      // set when cjpeg_decode returns non-zero
} cjpeg_image;

/// Decodes a whole JPEG held in memory to 8-bit RGB. Grayscale is expanded, CMYK/YCCK
/// (Adobe inverted or not) converted. Refuses images with more than `max_pixels` pixels
/// before allocating. A file that ends early is an error, not a gray-filled image.
/// Returns 0 on success; otherwise `error` holds a message and `pixels` is NULL.
int cjpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cjpeg_image *out);

/// Frees pixels returned by cjpeg_decode.
void cjpeg_free(uint8_t *pixels);

#endif

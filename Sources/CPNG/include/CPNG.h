// A small C shim over libpng (Debian: libpng-dev). libpng reports errors by longjmp; the
// shim catches them and returns the message, so untrusted files cannot end the process.
#ifndef CPNG_H
#define CPNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *pixels;      // (height, width, 4) RGBA, 8 bits, not premultiplied; free with cpng_free
    int width;
    int height;
    int color_type;       // PNG colour type of the file (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA)
    int bit_depth;        // bit depth of the file (1, 2, 4, 8, 16)
    int has_alpha;        // 1 when the file carries alpha (an alpha channel or tRNS)
    char error[200];      // set when cpng_decode returns non-zero
} cpng_image;

/// Decodes a whole PNG held in memory to 8-bit RGBA: palette and low-bit gray expanded,
/// tRNS turned into alpha, 16-bit reduced to its high byte (as PIL does), interlacing undone.
/// Refuses more than `max_pixels` pixels before allocating. Returns 0 on success.
int cpng_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cpng_image *out);

/// Frees pixels returned by cpng_decode.
void cpng_free(uint8_t *pixels);

#endif

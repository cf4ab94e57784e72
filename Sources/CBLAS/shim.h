// The OpenBLAS CBLAS interface (Debian: libopenblas-dev). Found through pkg-config `openblas`.
#include <cblas.h>

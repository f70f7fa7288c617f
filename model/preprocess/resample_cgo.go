//go:build cgo && !purego

package preprocess

// The two resize passes in C (resample.c): the same integer arithmetic as
// the Go passes in resample.go, so the same bytes, with AVX2 where the CPU has
// it. They were 28 % of the service's CPU at concurrency 8 on 500x375 photos.

/*
#cgo CFLAGS: -O2
#include <stddef.h>
#include <stdint.h>
void cd_hpass(uint8_t *out, const uint8_t *in, size_t in_len, ptrdiff_t stride, int rows,
              int cw, const int32_t *bounds, const int32_t *k, int ksize, int simd);
void cd_vpass(uint8_t *out, const uint8_t *mid, ptrdiff_t stride, int ch,
              const int32_t *bounds, const int32_t *k, int ksize, int simd);
int cd_resample_avx2(void);
*/
import "C"

import "unsafe"

// resampleAVX2 says whether the passes use AVX2: the CPU has it. Tests turn
// it off to check the C fallback too.
var resampleAVX2 = C.cd_resample_avx2() != 0

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func hpass(out, in []uint8, stride, rows int, c *coeffs) {
	cw := len(c.bounds) / 2
	if rows == 0 || cw == 0 {
		return
	}
	// The C side trusts these sizes. Taps never move left as the output
	// index grows, so the last output reads furthest; the AVX2 pass may read
	// the weight just past the last output's (the padding zero).
	_ = out[rows*cw*3-1]
	_ = in[(rows-1)*stride+int(c.bounds[2*cw-2]+c.bounds[2*cw-1])*3-1]
	_ = c.k[cw*c.ksize]
	C.cd_hpass((*C.uint8_t)(unsafe.Pointer(&out[0])), (*C.uint8_t)(unsafe.Pointer(&in[0])), C.size_t(len(in)),
		C.ptrdiff_t(stride), C.int(rows), C.int(cw),
		(*C.int32_t)(unsafe.Pointer(&c.bounds[0])), (*C.int32_t)(unsafe.Pointer(&c.k[0])), C.int(c.ksize), cbool(resampleAVX2))
}

func vpass(out, mid []uint8, stride, ch int, c *coeffs) {
	if ch == 0 || stride == 0 {
		return
	}
	_ = out[ch*stride-1]
	_ = mid[int(c.bounds[2*ch-2]+c.bounds[2*ch-1])*stride-1]
	C.cd_vpass((*C.uint8_t)(unsafe.Pointer(&out[0])), (*C.uint8_t)(unsafe.Pointer(&mid[0])),
		C.ptrdiff_t(stride), C.int(ch),
		(*C.int32_t)(unsafe.Pointer(&c.bounds[0])), (*C.int32_t)(unsafe.Pointer(&c.k[0])), C.int(c.ksize), cbool(resampleAVX2))
}

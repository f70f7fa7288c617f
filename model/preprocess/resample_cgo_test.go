//go:build cgo && !purego

package preprocess

import (
	"catsdogs/model/decode"
	"math/rand/v2"
	"testing"
)

// The C passes (AVX2 and plain) must give the Go passes' bytes, which the
// Pillow goldens in resample_test.go pin: on random pixels (extremes
// included), many scale factors (odd and even tap counts), crop windows at
// the image's edges (where the AVX2 pass must not read past the buffer) and
// row widths that are not a multiple of 16 bytes. Where rounding makes an
// output's tap count equal ksize (6 -> 94 at output 23), the AVX2 pass reads
// one weight past the output's own: the next output's (it must mask it) or,
// for a window's last output, the padding zero at the end of k. One-wide and
// one-high windows at every output of those sizes pin both.
func TestResamplePassesInCMatchGo(t *testing.T) {
	hasAVX2 := resampleAVX2
	if !hasAVX2 {
		t.Log("this CPU has no AVX2: only the plain C passes are compared")
	}
	defer func() { resampleAVX2 = hasAVX2 }()
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := [][4]int{
		{500, 375, 256, 192}, {375, 500, 192, 256}, {4032, 3024, 256, 192}, {17, 9, 5, 3},
		{3, 3, 1, 1}, {1, 7, 1, 3}, {640, 480, 171, 128}, {31, 17, 171, 128}, {99, 101, 99, 50},
		{99, 101, 50, 101}, {7, 7, 13, 3}, {1000, 10, 33, 10}, {257, 255, 256, 256},
		{6, 8, 94, 9}, {4, 8, 196, 9}, {8, 6, 9, 94}, {7, 38, 71, 186},
	}
	fullTaps := 0 // outputs whose tap count is ksize, seen at least once
	for n := 0; n < 40; n++ {
		sw, sh := 1+rng.IntN(700), 1+rng.IntN(700)
		sizes = append(sizes, [4]int{sw, sh, 1 + rng.IntN(300), 1 + rng.IntN(300)})
	}
	for _, s := range sizes {
		src := &decode.RGB{W: s[0], H: s[1], Pix: make([]uint8, s[0]*s[1]*3)}
		for i := range src.Pix {
			switch rng.IntN(4) {
			case 0:
				src.Pix[i] = 255
			case 1:
				src.Pix[i] = 0
			default:
				src.Pix[i] = uint8(rng.IntN(256))
			}
		}
		nw, nh := s[2], s[3]
		windows := [][4]int{{0, 0, nw, nh}, {nw - 1, nh - 1, 1, 1}, {nw / 3, nh / 3, nw - nw/3, nh - nh/3}}
		if nw*nh < 2000 {
			for x := 0; x < nw; x++ {
				windows = append(windows, [4]int{x, 0, 1, nh})
			}
			for y := 0; y < nh; y++ {
				windows = append(windows, [4]int{0, y, nw, 1})
			}
		}
		for _, w := range windows {
			left, top, cw, ch := w[0], w[1], w[2], w[3]
			if cw <= 0 || ch <= 0 {
				continue
			}
			hc, vc := precomputeCoeffs(s[0], nw, left, cw), precomputeCoeffs(s[1], nh, top, ch)
			for _, c := range []coeffs{hc, vc} {
				for i := 1; i < len(c.bounds); i += 2 {
					if int(c.bounds[i]) == c.ksize {
						fullTaps++
					}
				}
			}
			// Horizontal over every source row, then vertical over that.
			wantH := make([]uint8, s[1]*cw*3)
			hpassGo(wantH, src.Pix, s[0]*3, s[1], &hc)
			wantV := make([]uint8, ch*cw*3)
			vpassGo(wantV, wantH, cw*3, ch, &vc)
			for _, simd := range []bool{false, true} {
				if simd && !hasAVX2 {
					continue
				}
				resampleAVX2 = simd
				gotH := make([]uint8, len(wantH))
				hpass(gotH, src.Pix, s[0]*3, s[1], &hc)
				gotV := make([]uint8, len(wantV))
				vpass(gotV, wantH, cw*3, ch, &vc)
				if string(gotH) != string(wantH) || string(gotV) != string(wantV) {
					t.Fatalf("%dx%d -> %dx%d window %v, avx2 %v: C and Go passes differ (horizontal equal: %v)",
						s[0], s[1], nw, nh, w, simd, string(gotH) == string(wantH))
				}
			}
		}
	}
	if fullTaps == 0 {
		t.Error("no output had ksize taps: the cases no longer reach the AVX2 pass's masked weight")
	}
}

// BenchmarkResamplePasses times both passes for a 500x375 photo headed for a
// 192x192 crop of its 256x192 resize, in Go, plain C and AVX2.
func BenchmarkResamplePasses(b *testing.B) {
	src := unitPattern(500, 375)
	hc, vc := precomputeCoeffs(500, 256, 32, 192), precomputeCoeffs(375, 192, 0, 192)
	mid, out := make([]uint8, 375*192*3), make([]uint8, 192*192*3)
	hasAVX2 := resampleAVX2
	defer func() { resampleAVX2 = hasAVX2 }()
	run := func(name string, h func([]uint8, []uint8, int, int, *coeffs), v func([]uint8, []uint8, int, int, *coeffs)) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				h(mid, src.Pix, 500*3, 375, &hc)
				v(out, mid, 192*3, 192, &vc)
			}
		})
	}
	run("go", hpassGo, vpassGo)
	resampleAVX2 = false
	run("c", hpass, vpass)
	if hasAVX2 {
		resampleAVX2 = true
		run("avx2", hpass, vpass)
	}
}

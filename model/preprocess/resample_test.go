package preprocess

import (
	"catsdogs/model/decode"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"testing"
)

// fullResize is resizeCrop with the whole output as the window.
func fullResize(src *decode.RGB, nw, nh int) []uint8 {
	dst := make([]uint8, nw*nh*3)
	resizeCrop(dst, src, nw, nh, 0, 0, nw, nh, nil)
	return dst
}

func TestResizeConstantImageStaysConstant(t *testing.T) {
	sizes := [][4]int{
		{1, 1, 7, 5}, {5, 3, 1, 1}, {100, 80, 13, 9}, {13, 9, 100, 80}, {640, 480, 171, 128},
		{333, 777, 128, 299}, {4032, 3024, 7, 5}, {3, 300, 300, 3}, {256, 256, 255, 257},
	}
	for _, c := range []([3]uint8){{0, 0, 0}, {255, 255, 255}, {1, 128, 254}, {37, 200, 99}} {
		for _, s := range sizes {
			src := unitSolid(s[0], s[1], c)
			out := fullResize(src, s[2], s[3])
			for i := 0; i < len(out); i += 3 {
				if out[i] != c[0] || out[i+1] != c[1] || out[i+2] != c[2] {
					t.Fatalf("%dx%d -> %dx%d of constant %v: pixel %d is %v", s[0], s[1], s[2], s[3], c, i/3, out[i:i+3])
				}
			}
		}
	}
}

func TestResizeSameSizeIsIdentity(t *testing.T) {
	src := unitPattern(37, 23)
	if got := fullResize(src, 37, 23); string(got) != string(src.Pix) {
		t.Fatal("same-size resize changed the pixels")
	}
	// A window of a same-size "resize" is a plain crop.
	dst := make([]uint8, 10*7*3)
	resizeCrop(dst, src, 37, 23, 5, 9, 10, 7, nil)
	for y := 0; y < 7; y++ {
		for x := 0; x < 10; x++ {
			if got, want := [3]uint8(dst[(y*10+x)*3:]), at(src, 5+x, 9+y); got != want {
				t.Fatalf("window pixel (%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
}

// resizeCrop promises the same bytes as a full resize followed by a crop.
func TestResizeCropWindowEqualsCroppedFullResize(t *testing.T) {
	cases := []struct{ sw, sh, nw, nh int }{
		{640, 480, 171, 128}, // typical shrink
		{500, 375, 299, 224},
		{213, 160, 171, 128}, // the dataset's sizes
		{160, 213, 128, 170},
		{31, 17, 171, 128},   // upscale both ways
		{4032, 3024, 37, 29}, // big shrink, wide kernels
		{99, 101, 99, 50},    // vertical only
		{99, 101, 50, 101},   // horizontal only
		{7, 7, 13, 3},        // up one way, down the other
		{1, 1, 5, 5},
	}
	for _, c := range cases {
		src := unitPattern(c.sw, c.sh)
		full := fullResize(src, c.nw, c.nh)
		windows := [][4]int{
			{0, 0, c.nw, c.nh}, {0, 0, 1, 1}, {c.nw - 1, c.nh - 1, 1, 1},
			{(c.nw - min(c.nw, 3)) / 2, (c.nh - min(c.nh, 5)) / 2, min(c.nw, 3), min(c.nh, 5)},
			{c.nw / 3, 0, c.nw - c.nw/3, c.nh}, {0, c.nh / 4, c.nw, c.nh / 2},
		}
		for _, w := range windows {
			left, top, cw, ch := w[0], w[1], w[2], w[3]
			if cw <= 0 || ch <= 0 {
				continue
			}
			dst := make([]uint8, cw*ch*3)
			resizeCrop(dst, src, c.nw, c.nh, left, top, cw, ch, make([]uint8, 7)) // tiny scratch: must grow
			for y := 0; y < ch; y++ {
				got := dst[y*cw*3 : (y+1)*cw*3]
				want := full[((top+y)*c.nw+left)*3 : ((top+y)*c.nw+left+cw)*3]
				if string(got) != string(want) {
					t.Fatalf("%dx%d -> %dx%d window %v: row %d differs from the full resize", c.sw, c.sh, c.nw, c.nh, w, y)
				}
			}
		}
	}
}

// The 1-D definition, written out for 4 -> 2 (scale 2, so the triangle's
// support is 2 input pixels): output 0 is centred at input 1.0 and takes
// inputs 0, 1, 2 with triangle weights 0.75, 0.75, 0.25 (normalised 3/7, 3/7,
// 1/7); output 1 is centred at 3.0 and takes inputs 1, 2, 3 with 1/7, 3/7, 3/7.
// Pillow 9.4 gives [19 54] for [10 20 40 80].
func TestResizeHandComputedTiny(t *testing.T) {
	in := []uint8{10, 20, 40, 80}
	src := &decode.RGB{W: 4, H: 1, Pix: make([]uint8, 12)}
	for i, v := range in {
		src.Pix[3*i], src.Pix[3*i+1], src.Pix[3*i+2] = v, v, v
	}
	want := []float64{
		(3*10.0 + 3*20 + 1*40) / 7, // 18.57
		(1*20.0 + 3*40 + 3*80) / 7, // 54.29
	}
	got := fullResize(src, 2, 1)
	for i, w := range want {
		if r := uint8(math.Round(w)); got[3*i] != r || got[3*i+1] != r || got[3*i+2] != r {
			t.Errorf("output %d = %v, want %d (%.3f)", i, got[3*i:3*i+3], r, w)
		}
	}
	if got[0] != 19 || got[3] != 54 {
		t.Errorf("got [%d %d], Pillow gives [19 54]", got[0], got[3])
	}

	// Upscale 2 -> 5 (support 1): centres at 0.2, 0.6, 1.0, 1.4, 1.8 in input
	// pixel units; Pillow gives [0 25 128 230 255] for [0 255].
	src = &decode.RGB{W: 2, H: 1, Pix: []uint8{0, 0, 0, 255, 255, 255}}
	got = fullResize(src, 5, 1)
	for i, w := range []uint8{0, 25, 128, 230, 255} {
		if got[3*i] != w {
			t.Errorf("2->5 output %d = %d, Pillow gives %d", i, got[3*i], w)
		}
	}

	// The coefficients themselves: 22-bit fixed point, summing to 1.
	c := precomputeCoeffs(4, 2, 0, 2)
	if c.ksize != 5 || c.bounds[0] != 0 || c.bounds[1] != 3 || c.bounds[2] != 1 || c.bounds[3] != 3 {
		t.Fatalf("coeffs bounds %v ksize %d, want [0 3 1 3] and 5", c.bounds, c.ksize)
	}
	one := int32(1 << precisionBits)
	if k := c.k[:3]; k[0] != k[1] || k[0] != int32(math.Round(3.0/7*float64(one))) || k[2] != int32(math.Round(1.0/7*float64(one))) {
		t.Errorf("weights %v, want 3/7, 3/7, 1/7 of %d", k, one)
	}
}

// Golden values from Pillow 9.4.0: Image.fromarray(pattern).resize((w, h),
// Image.BILINEAR), pattern as in unitPattern. Small cases are spelled out,
// larger ones compared by SHA-256 of the packed RGB output.
func TestResizeMatchesPillowGolden(t *testing.T) {
	small := []struct {
		w, h int
		want []uint8
	}{
		{3, 2, []uint8{93, 112, 123, 145, 126, 112, 107, 111, 94, 99, 130, 96, 114, 135, 113, 112, 125, 125}},
		{3, 5, []uint8{36, 92, 149, 126, 148, 111, 70, 149, 82, 138, 145, 97, 183, 90, 102, 147, 85, 78, 85, 70, 147, 114, 156, 139, 88, 96, 140, 116, 163, 63, 85, 138, 70, 94, 163, 86, 83, 128, 101, 142, 124, 151, 146, 104, 172}},
		{7, 3, []uint8{41, 96, 151, 84, 142, 91, 133, 91, 158, 188, 161, 96, 139, 96, 90, 60, 81, 64, 133, 187, 94, 147, 80, 99, 59, 137, 102, 119, 93, 180, 128, 174, 77, 143, 124, 134, 79, 116, 67, 106, 90, 160, 134, 106, 114, 53, 174, 39, 124, 144, 128, 91, 90, 125, 174, 194, 104, 117, 54, 137, 102, 182, 152}},
		{1, 1, []uint8{114, 124, 113}},
		{4, 7, []uint8{21, 76, 131, 91, 159, 154, 141, 109, 86, 50, 182, 82, 78, 129, 124, 154, 108, 118, 136, 112, 87, 120, 122, 81, 118, 135, 120, 163, 94, 114, 135, 119, 98, 143, 81, 98, 109, 49, 124, 66, 154, 170, 142, 130, 127, 72, 90, 144, 98, 144, 63, 108, 119, 116, 98, 162, 83, 78, 140, 108, 97, 148, 71, 107, 127, 105, 125, 146, 104, 104, 136, 131, 102, 103, 116, 82, 157, 120, 183, 108, 155, 135, 103, 181}},
	}
	src := unitPattern(7, 5)
	for _, c := range small {
		if got := fullResize(src, c.w, c.h); string(got) != string(c.want) {
			t.Errorf("7x5 -> %dx%d:\n got %v\nwant %v", c.w, c.h, got, c.want)
		}
	}
	hashed := []struct {
		sw, sh, w, h int
		sha          string
	}{
		{640, 480, 171, 128, "d7fea44289fa8218593a4f67629df383eb12bbd29284ef5c831e622a15216448"},
		{500, 375, 224, 168, "3931dc496b8007944ba38d7455e0e5307c69e9902f05f26d3786ccf4049da2f8"},
		{33, 17, 200, 100, "aabe6b0c64603b535b6f011a5873e47e9893ada9fcf212c8f1fa4dabc04d94a9"},
		{1001, 999, 37, 41, "c444db247f6e6043777c156e914998dbdf83a1479fcb3e1a9ed6c7ba9f4aa49d"},
		{300, 200, 300, 77, "3119c28caa54e950b2bd61e06ec6070baea3d771a1493c9dd9256be7fef08fc9"},
		{97, 300, 40, 300, "3c2d1df13e468299a27255955ad6f52eaf4ab272e5845a13e5820f9352cd5c04"},
	}
	for _, c := range hashed {
		sum := sha256.Sum256(fullResize(unitPattern(c.sw, c.sh), c.w, c.h))
		if got := hex.EncodeToString(sum[:]); got != c.sha {
			t.Errorf("%dx%d -> %dx%d: sha256 %s, Pillow's is %s", c.sw, c.sh, c.w, c.h, got, c.sha)
		}
	}
	// 7x5 -> 13x9 (upscale), first row and last pixel from Pillow.
	got := fullResize(src, 13, 9)
	wantRow0 := []uint8{0, 53, 106, 12, 66, 120, 34, 89, 145, 58, 117, 177, 82, 147, 211, 110, 182, 136, 138, 218, 42, 169, 123, 96, 181, 48, 131, 78, 97, 57, 15, 148, 25, 52, 203, 98, 74, 235, 140}
	if string(got[:39]) != string(wantRow0) {
		t.Errorf("7x5 -> 13x9 row 0:\n got %v\nwant %v", got[:39], wantRow0)
	}
	if last := got[len(got)-3:]; last[0] != 174 || last[1] != 159 || last[2] != 144 {
		t.Errorf("7x5 -> 13x9 last pixel %v, Pillow gives [174 159 144]", last)
	}
}

// Scratch space is reused across calls and must not leak between them.
func TestResizeCropScratchReuse(t *testing.T) {
	var tmp []uint8
	a, b := unitPattern(300, 200), unitSolid(50, 60, [3]uint8{9, 8, 7})
	wantA, wantB := fullResize(a, 64, 64), fullResize(b, 64, 64)
	for i := 0; i < 3; i++ {
		dst := make([]uint8, 64*64*3)
		tmp = resizeCrop(dst, a, 64, 64, 0, 0, 64, 64, tmp)
		if string(dst) != string(wantA) {
			t.Fatal("result changed when scratch was reused")
		}
		tmp = resizeCrop(dst, b, 64, 64, 0, 0, 64, 64, tmp)
		if string(dst) != string(wantB) {
			t.Fatal("result changed when scratch was reused")
		}
	}
}

package preprocess

import (
	"math"
	"sync"
	"testing"

	"catsdogs/model/decode"
	"catsdogs/model/spec"
	"catsdogs/tests/testspec"
)

// halves makes a w x h image whose first half (left half when horizontal,
// top half otherwise) is red and the second half blue.
func halves(w, h int, horizontal bool) *decode.RGB {
	img := unitSolid(w, h, [3]uint8{0, 0, 255})
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if (horizontal && x < w/2) || (!horizontal && y < h/2) {
				copy(img.Pix[(y*w+x)*3:], []uint8{255, 0, 0})
			}
		}
	}
	return img
}

// crop reads an NHWC raw-spec tensor back as an RGB image.
func crop(t []float32, w, h int) *decode.RGB {
	img := &decode.RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	for i, v := range t {
		img.Pix[i] = uint8(v)
	}
	return img
}

func TestPreprocessLayoutsAreTransposes(t *testing.T) {
	src := unitPattern(301, 203)
	nchw := testspec.ImageNet(64)
	nhwc := nchw
	nhwc.Layout = spec.LayoutNHWC
	a, b := fillTensor(nchw, src), fillTensor(nhwc, src)
	const W, H = 64, 64
	for c := 0; c < 3; c++ {
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				if a[c*W*H+y*W+x] != b[(y*W+x)*3+c] {
					t.Fatalf("c=%d y=%d x=%d: NCHW %v != NHWC %v", c, y, x, a[c*W*H+y*W+x], b[(y*W+x)*3+c])
				}
			}
		}
	}
}

func TestPreprocessBGRSwapsChannels(t *testing.T) {
	src := unitPattern(90, 70)
	rgb := testspec.Raw(32, 32, spec.ResizeCenterCrop)
	bgr := rgb
	bgr.ChannelOrder = spec.OrderBGR
	a, b := fillTensor(rgb, src), fillTensor(bgr, src)
	for i := 0; i < len(a); i += 3 {
		if a[i] != b[i+2] || a[i+1] != b[i+1] || a[i+2] != b[i] {
			t.Fatalf("pixel %d: RGB %v, BGR %v", i/3, a[i:i+3], b[i:i+3])
		}
	}
}

// Keras "caffe" preprocessing: BGR, no scaling, ImageNet means in BGR order.
func TestPreprocessCaffeStyle(t *testing.T) {
	sp := testspec.Raw(16, 16, spec.ResizeStretch)
	sp.ChannelOrder = spec.OrderBGR
	sp.Mean = [3]float32{103.939, 116.779, 123.68}
	r, g, b := uint8(200), uint8(100), uint8(50)
	out := fillTensor(sp, unitSolid(40, 30, [3]uint8{r, g, b}))
	want := [3]float32{float32(b) - 103.939, float32(g) - 116.779, float32(r) - 123.68}
	for i := 0; i < len(out); i += 3 {
		if [3]float32(out[i:i+3]) != want {
			t.Fatalf("pixel %d = %v, want %v", i/3, out[i:i+3], want)
		}
	}
}

func TestPreprocessMeanStdScale(t *testing.T) {
	sp := testspec.ImageNet(8)
	px := [3]uint8{255, 128, 0}
	out := fillTensor(sp, unitSolid(8, 8, px))
	for c := 0; c < 3; c++ {
		want := (float64(px[c])/255 - float64(sp.Mean[c])) / float64(sp.Std[c])
		for i := 0; i < 64; i++ {
			if got := float64(out[c*64+i]); math.Abs(got-want) > 1e-5 {
				t.Fatalf("channel %d = %v, want %v", c, got, want)
			}
		}
	}
	// TF/Inception style: pixel/127.5 - 1, given as scale 1/127.5, mean 1, std 1.
	sp = testspec.Raw(4, 4, spec.ResizeStretch)
	sp.PixelScale, sp.Mean = float32(1/127.5), [3]float32{1, 1, 1}
	out = fillTensor(sp, unitSolid(4, 4, [3]uint8{0, 255, 51}))
	for i, want := range []float64{-1, 1, 51/127.5 - 1} {
		if math.Abs(float64(out[i])-want) > 1e-6 {
			t.Errorf("channel %d = %v, want %v", i, out[i], want)
		}
	}
}

func TestPreprocessCenterCropLandscapeAndPortrait(t *testing.T) {
	for _, tc := range []struct {
		name       string
		w, h       int
		horizontal bool
		symmetric  bool // the red/blue edge falls exactly on the crop's centre line
	}{
		{"landscape", 300, 100, true, true},
		{"portrait", 100, 300, false, true},
		{"landscape-odd", 333, 127, true, false},
		{"portrait-odd", 127, 333, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const S = 64
			img := crop(fillTensor(testspec.Raw(S, S, spec.ResizeCenterCrop), halves(tc.w, tc.h, tc.horizontal)), S, S)
			// Centred crop: the red/blue boundary sits in the middle of the crop.
			for i := 0; i < S; i++ {
				var first, last [3]uint8
				if tc.horizontal {
					first, last = at(img, 0, i), at(img, S-1, i)
				} else {
					first, last = at(img, i, 0), at(img, i, S-1)
				}
				if first != [3]uint8{255, 0, 0} || last != [3]uint8{0, 0, 255} {
					t.Fatalf("line %d: first %v last %v, want red then blue", i, first, last)
				}
			}
			// Symmetric about the centre: red at offset k equals blue at S-1-k.
			for k := 0; tc.symmetric && k < S; k++ {
				var a, b [3]uint8
				if tc.horizontal {
					a, b = at(img, k, S/2), at(img, S-1-k, S/2)
				} else {
					a, b = at(img, S/2, k), at(img, S/2, S-1-k)
				}
				if absDiff(a[0], b[2]) > 1 || absDiff(a[2], b[0]) > 1 || a[1] != 0 || b[1] != 0 {
					t.Fatalf("offset %d: %v vs mirrored %v: crop is not centred", k, a, b)
				}
			}
		})
	}
}

// The crop window must be the centre of the resized image, bit for bit.
func TestPreprocessCropGeometryExact(t *testing.T) {
	for _, sz := range [][2]int{{500, 375}, {375, 500}, {213, 160}, {160, 214}, {64, 64}, {20, 10}, {1000, 101}} {
		src := unitPattern(sz[0], sz[1])
		for _, sp := range []spec.Spec{testspec.Raw(64, 64, spec.ResizeCenterCrop), testspec.Raw(48, 32, spec.ResizeCenterCrop)} {
			nw, nh := scaledSize(src.W, src.H, sp.ResizeShorter)
			nw, nh = max(nw, sp.Width), max(nh, sp.Height)
			full := fullResize(src, nw, nh)
			left, top := (nw-sp.Width)/2, (nh-sp.Height)/2
			got := fillTensor(sp, src)
			for y := 0; y < sp.Height; y++ {
				for x := 0; x < sp.Width; x++ {
					for c := 0; c < 3; c++ {
						if want := full[((top+y)*nw+left+x)*3+c]; got[(y*sp.Width+x)*3+c] != float32(want) {
							t.Fatalf("%v spec %dx%d: (%d,%d,%d) = %v, want %d", sz, sp.Width, sp.Height, x, y, c, got[(y*sp.Width+x)*3+c], want)
						}
					}
				}
			}
		}
	}
}

func TestScaledSizeRoundsHalfUp(t *testing.T) {
	for _, c := range []struct{ w, h, r, nw, nh int }{
		{500, 375, 128, 171, 128}, // 170.67
		{375, 500, 128, 128, 171},
		{4032, 3024, 224, 299, 224}, // 298.67
		{300, 200, 128, 192, 128},
		{3, 2, 1, 2, 1}, // 1.5 rounds up
		{2, 3, 1, 1, 2},
		{100, 100, 64, 64, 64},
	} {
		if nw, nh := scaledSize(c.w, c.h, c.r); nw != c.nw || nh != c.nh {
			t.Errorf("scaledSize(%d,%d,%d) = %d,%d, want %d,%d", c.w, c.h, c.r, nw, nh, c.nw, c.nh)
		}
	}
}

func TestPreprocessStretch(t *testing.T) {
	src := halves(300, 100, true)
	sp := testspec.Raw(64, 64, spec.ResizeStretch)
	got := crop(fillTensor(sp, src), 64, 64)
	if string(got.Pix) != string(fullResize(src, 64, 64)) {
		t.Fatal("stretch is not a plain resize to the input size")
	}
	// The whole width survives: the left half is red, the right half blue.
	if at(got, 0, 10) != [3]uint8{255, 0, 0} || at(got, 63, 10) != [3]uint8{0, 0, 255} || at(got, 20, 10) != [3]uint8{255, 0, 0} {
		t.Fatalf("stretch lost the sides: %v %v %v", at(got, 0, 10), at(got, 20, 10), at(got, 63, 10))
	}
}

func TestPreprocessDecodeOptions(t *testing.T) {
	cc := New(spec.Spec{Width: 224, Height: 224, Resize: spec.ResizeCenterCrop, ResizeShorter: 256})
	if o := cc.DecodeOptions(1000); o != (decode.Options{MaxPixels: 1000, MinW: 256, MinH: 256}) {
		t.Errorf("center crop: %+v", o)
	}
	st := New(spec.Spec{Width: 320, Height: 240, Resize: spec.ResizeStretch})
	if o := st.DecodeOptions(5); o != (decode.Options{MaxPixels: 5, MinW: 320, MinH: 240}) {
		t.Errorf("stretch: %+v", o)
	}
}

// Fill shares pooled scratch buffers: concurrent calls must not mix images.
func TestPreprocessConcurrentFill(t *testing.T) {
	p := New(testspec.ImageNet(96))
	imgs := []*decode.RGB{unitPattern(300, 200), unitPattern(120, 333), unitSolid(97, 97, [3]uint8{1, 2, 3}), halves(640, 480, false)}
	want := make([][]float32, len(imgs))
	for i, im := range imgs {
		want[i] = make([]float32, p.TensorLen())
		p.Fill(want[i], im)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float32, p.TensorLen())
			for r := 0; r < 20; r++ {
				i := (g + r) % len(imgs)
				p.Fill(out, imgs[i])
				if m, _ := testspec.TensorDiff(out, want[i]); m != 0 {
					errs <- "concurrent Fill produced a different tensor"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

package preprocess

import (
	"math"
	"sync"
	"testing"

	"catsdogs/model/decode"
	"catsdogs/model/spec"
	"catsdogs/tests/pets"
	"catsdogs/tests/testimg"
)

// repoRoot is the repository root seen from model/preprocess, where tests run.
const repoRoot = "../.."

// unitRawSpec leaves pixel values untouched (value = pixel), NHWC RGB, so a
// tensor can be read back as bytes.
func unitRawSpec(w, h int, resize string) spec.Spec {
	return spec.Spec{
		Labels: []string{"a", "b", "c"}, Layout: spec.LayoutNHWC, Width: w, Height: h, Resize: resize,
		ResizeShorter: max(w, h), ChannelOrder: spec.OrderRGB, PixelScale: 1, Std: [3]float32{1, 1, 1},
		Output: spec.OutputLogits,
	}
}

// unitSolid makes a w x h RGB image of one colour.
func unitSolid(w, h int, c [3]uint8) *decode.RGB {
	img := &decode.RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	for i := 0; i < w*h; i++ {
		copy(img.Pix[3*i:], c[:])
	}
	return img
}

// unitPattern is testimg.Pattern as an image.
func unitPattern(w, h int) *decode.RGB { return &decode.RGB{W: w, H: h, Pix: testimg.Pattern(w, h)} }

func at(m *decode.RGB, x, y int) [3]uint8 {
	i := (y*m.W + x) * 3
	return [3]uint8{m.Pix[i], m.Pix[i+1], m.Pix[i+2]}
}

// tensorDiff reports the mean and max absolute difference of two tensors.
func tensorDiff(a, b []float32) (mean, maxd float64) {
	var sum float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		sum += d
		maxd = math.Max(maxd, d)
	}
	return sum / float64(len(a)), maxd
}

// fillTensor runs img through a fresh Preprocessor for s.
func fillTensor(s spec.Spec, img *decode.RGB) []float32 {
	p := New(s)
	out := make([]float32, p.TensorLen())
	p.Fill(out, img)
	return out
}

var (
	bigJPEGOnce sync.Once
	bigJPEG     []byte
	bigJPEGErr  error
)

// unitBigJPEG is one real photo upscaled to 4032x3024 (12 MP) at q90, built
// once per test binary because it takes a second or two.
func unitBigJPEG(tb testing.TB) []byte {
	tb.Helper()
	photos := pets.Sample(tb, repoRoot, 1)
	bigJPEGOnce.Do(func() { bigJPEG, bigJPEGErr = pets.Upscaled(photos[0], 4032, 3024, 90) })
	if bigJPEGErr != nil {
		tb.Fatal(bigJPEGErr)
	}
	return bigJPEG
}

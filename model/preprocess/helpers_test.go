package preprocess

import (
	"catsdogs/model/decode"
	"catsdogs/model/spec"
	"catsdogs/tests/testimg"
)

// repoRoot is the repository root seen from model/preprocess, where tests run.
const repoRoot = "../.."

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

// fillTensor runs img through a fresh Preprocessor for s.
func fillTensor(s spec.Spec, img *decode.RGB) []float32 {
	p := New(s)
	out := make([]float32, p.TensorLen())
	p.Fill(out, img)
	return out
}

// Package testimg makes the synthetic images unit tests compare pixel by
// pixel: deterministic, so golden values computed once (with Pillow) hold.
package testimg

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// Pattern is a w x h non-separable test pattern as packed 8-bit RGB (3 bytes
// a pixel, no padding); the same formula generated the Pillow golden values
// in model/preprocess/resample_test.go.
func Pattern(w, h int) []uint8 {
	pix := make([]uint8, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				pix[(y*w+x)*3+c] = uint8((x*37 + y*91 + c*53 + x*y*7 + (x*x*3+y*y*5)*(c+1)) % 256)
			}
		}
	}
	return pix
}

// PatternImage is Pattern as an opaque standard image, for the encoders.
func PatternImage(w, h int) *image.NRGBA {
	pix := Pattern(w, h)
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		out.SetNRGBA(i%w, i/w, color.NRGBA{pix[3*i], pix[3*i+1], pix[3*i+2], 255})
	}
	return out
}

// PNG encodes img as a PNG.
func PNG(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic("testimg: " + err.Error()) // only for an empty or huge image: a broken test
	}
	return b.Bytes()
}

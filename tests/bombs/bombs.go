// Package bombs generates hostile image files for tests: small uploads that
// are expensive to decode. They are built on demand so none is committed.
package bombs

import (
	"bytes"
	"image"
	"image/png"
)

// GreyPNG is a w x h all-black greyscale PNG. Long runs of zeros deflate
// about 1000:1, so a 1 x 10,000,000 strip is ~20 KB.
func GreyPNG(w, h int) []byte {
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		panic(err) // encoding to memory cannot fail for a valid image
	}
	return b.Bytes()
}

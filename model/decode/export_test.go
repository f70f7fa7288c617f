package decode

import (
	"bytes"
	"context"
	"errors"
	"image"
)

// Entry points the service does not use, for this package's tests and
// for decode_test (fastpath_test.go), which compares the decoders after
// preprocessing.

// Decode is Inspect then Pixels: bytes to upright RGB, bounds checked.
func Decode(data []byte, opt Options) (*RGB, string, error) {
	h, err := Inspect(data, opt)
	if err != nil {
		return nil, h.Format, err
	}
	img, err := Pixels(context.Background(), data, h, opt)
	return img, h.Format, err
}

// PureGo decodes every format, JPEG included, with Go's decoders (what a
// build without libjpeg-turbo does), at full size and without bounds.
func PureGo(data []byte) (*RGB, error) {
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	orient := 1
	if format == "jpeg" {
		orient = jpegOrientation(data)
	}
	return orient8(toRGB(img), orient), nil
}

// IsClientError reports whether err is the uploader's fault (a bad image):
// every refusal of a decode must be.
func IsClientError(err error) bool {
	return errors.Is(err, ErrUnsupportedFormat) || errors.Is(err, ErrCorruptImage) || errors.Is(err, ErrImageTooLarge)
}

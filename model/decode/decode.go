// Package decode turns uploaded bytes into upright 8-bit RGB. It sniffs the
// format from the content, refuses hostile headers (size, shape, JPEG scan
// count) before any pixel is decoded, and decodes JPEGs with libjpeg-turbo
// through cgo (jpeg_turbo.go) or, built with -tags purego or CGO_ENABLED=0,
// with Go's decoders like every other format. To change how images are
// decoded, this package is the whole story: it imports nothing of the service.
package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registered decoders: formats are sniffed from the bytes
	_ "image/jpeg"
	_ "image/png"
	"strings"
	"time"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// RGB is a packed 8-bit RGB image, 3 bytes per pixel, no padding.
type RGB struct {
	W, H int
	Pix  []uint8
}

// Formats are the image formats the service reads, recognised from their
// bytes. The one list: the unsupported-format error, the OpenAPI document
// (tools/openapi) and the page's message all come from it.
var Formats = []string{"JPEG", "PNG", "GIF", "WebP", "BMP", "TIFF"}

// FormatList is Formats in prose: "JPEG, PNG, ... or TIFF".
func FormatList() string {
	return strings.Join(Formats[:len(Formats)-1], ", ") + " or " + Formats[len(Formats)-1]
}

// Client-side problems with an uploaded image. The HTTP layer maps them to 4xx.
var (
	ErrUnsupportedFormat = errors.New("not an image in a supported format (" + strings.Join(Formats, ", ") + ")")
	ErrCorruptImage      = errors.New("image data is corrupt or truncated")
	ErrImageTooLarge     = errors.New("image over a size, shape, time or memory limit")
)

// overLimit is an ErrImageTooLarge whose text is the whole explanation, so
// a panorama is not announced as "too many pixels" before its real reason.
type overLimit string

func (e overLimit) Error() string        { return string(e) }
func (e overLimit) Is(target error) bool { return target == ErrImageTooLarge }

// OverLimit is an ErrImageTooLarge that says, in its own words, which limit.
func OverLimit(format string, a ...any) error { return overLimit(fmt.Sprintf(format, a...)) }

// Options bound and steer decoding.
type Options struct {
	// MaxPixels refuses images above this many pixels before decoding them;
	// zero means unlimited.
	MaxPixels int
	// MaxSide refuses images whose width or height is above this, and
	// MaxAspect those whose long side is more than MaxAspect times the short
	// one. Area alone lets through 1 x 10,000,000 strips whose scaled long side
	// is enormous. Zero means unlimited.
	MaxSide, MaxAspect int
	// Timeout bounds one decode; zero means none. libjpeg-turbo stops within
	// a row of blocks; the pure-Go decoders cannot be interrupted, so for them
	// the other bounds are what limits the cost.
	Timeout time.Duration
	// MinW, MinH: the smallest decoded size that still covers the model input
	// (after orientation). The JPEG fast path decodes at the smallest DCT scale
	// that is at least this large; zero means full size.
	MinW, MinH int
}

// Header is what an image's header says, read without decoding any pixels:
// all that the bounds and Cost need, so the bytes are walked once.
type Header struct {
	Format        string
	Width, Height int // as stored, before EXIF orientation
	Orientation   int // EXIF 1..8 (JPEG only; 1 otherwise)
	Model         color.Model
	// Scans counts a JPEG's scans up to MaxJPEGScans+1: 1 for baseline, more
	// for progressive files, whose decoders keep every coefficient. 0 for
	// other formats.
	Scans int
	// Interlaced: a PNG stored in Adam7 passes, each decoded apart.
	Interlaced bool
}

// Upright is the image's size as it is shown: after EXIF orientation, which
// swaps the sides for the four transposing orientations (5-8).
func (h Header) Upright() (w, ht int) {
	if h.Orientation >= 5 && h.Orientation <= 8 {
		return h.Height, h.Width
	}
	return h.Width, h.Height
}

// Inspect sniffs the format from the content and applies opt's bounds to the
// header's dimensions. It is cheap (no pixel is decoded), so callers run it
// before queueing for a worker: garbage and oversized uploads never take a slot.
func Inspect(data []byte, opt Options) (Header, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return Header{}, ErrUnsupportedFormat
		}
		return Header{Format: format}, fmt.Errorf("%w: %v", ErrCorruptImage, err)
	}
	h := Header{Format: format, Width: cfg.Width, Height: cfg.Height, Orientation: 1, Model: cfg.ColorModel}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return h, fmt.Errorf("%w: empty image", ErrCorruptImage)
	}
	if err := opt.checkShape(cfg.Width, cfg.Height); err != nil {
		return h, err
	}
	switch format {
	case "jpeg":
		h.Orientation = jpegOrientation(data)
		h.Scans = jpegScans(data, MaxJPEGScans)
		if err := checkJPEGScans(h); err != nil {
			return h, err
		}
	case "png":
		// IHDR's interlace method, at a fixed offset: DecodeConfig has
		// checked that the file starts with a whole IHDR chunk.
		h.Interlaced = data[28] == 1
	}
	return h, nil
}

// Pixels decodes data whose header Inspect has accepted as h. When
// ctx ends (the client left) it returns ctx.Err(), stopping libjpeg-turbo
// mid-decode; past opt.Timeout it returns an ErrImageTooLarge.
func Pixels(ctx context.Context, data []byte, h Header, opt Options) (*RGB, error) {
	dctx := ctx
	if opt.Timeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, opt.Timeout)
		defer cancel()
	}
	img, err := decodePixels(dctx, data, h, opt)
	if ctx.Err() != nil {
		return nil, ctx.Err() // nobody waits for the answer: skip the rest too
	}
	if errors.Is(err, errDecodeStopped) {
		return nil, OverLimit("decoding the image took longer than %s", opt.Timeout)
	}
	return img, err
}

// errDecodeStopped: the decoder gave up because its context ended.
var errDecodeStopped = errors.New("decode stopped")

func decodePixels(ctx context.Context, data []byte, h Header, opt Options) (*RGB, error) {
	if h.Format == "jpeg" && LibjpegTurbo {
		img, err := decodeJPEGTurbo(ctx, data, h, jpegScaleDenom(h, opt), MaxJPEGScans)
		if err != nil {
			return nil, err
		}
		return orient8(img, h.Orientation), nil
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptImage, err)
	}
	return orient8(toRGB(img), h.Orientation), nil
}

// checkShape applies the area, side and aspect-ratio bounds to a header's
// dimensions, before anything is allocated for the pixels.
func (o Options) checkShape(w, h int) error {
	long, short := max(w, h), min(w, h)
	switch {
	case o.MaxPixels > 0 && w*h > o.MaxPixels:
		return OverLimit("the image has too many pixels: %dx%d is over the limit of %d", w, h, o.MaxPixels)
	case o.MaxSide > 0 && long > o.MaxSide:
		return OverLimit("the image is too large: %dx%d has a side over the limit of %d pixels", w, h, o.MaxSide)
	case o.MaxAspect > 0 && long > o.MaxAspect*short:
		return OverLimit("the image is too narrow: %dx%d is more than %d times longer than wide", w, h, o.MaxAspect)
	}
	return nil
}

// toRGB flattens any decoded image to RGB, compositing transparency on white.
func toRGB(img image.Image) *RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	p := out.Pix
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = r, g, bb
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride : y*m.Stride+w]
			for x, v := range row {
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = v, v, v
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				a := uint32(row[4*x+3])
				i := (y*w + x) * 3
				for c := 0; c < 3; c++ {
					// straight alpha over white: v*a + 255*(1-a), rounded
					p[i+c] = uint8((uint32(row[4*x+c])*a + 255*(255-a) + 127) / 255)
				}
			}
		}
	case image.RGBA64Image:
		// Every other standard type (palette, 16-bit, CMYK, RGBA...):
		// premultiplied 16-bit colour over white is c + (1-a). RGBA64At
		// returns a plain struct; At() boxed one per pixel, which made a
		// 49 MP 16-bit PNG allocate about a gigabyte of garbage.
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := m.RGBA64At(b.Min.X+x, b.Min.Y+y)
				r, g, bb, a := uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A)
				i := (y*w + x) * 3
				p[i] = uint8((r + 0xffff - a) >> 8)
				p[i+1] = uint8((g + 0xffff - a) >> 8)
				p[i+2] = uint8((bb + 0xffff - a) >> 8)
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, g, bb, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				i := (y*w + x) * 3
				p[i] = uint8((r + 0xffff - a) >> 8)
				p[i+1] = uint8((g + 0xffff - a) >> 8)
				p[i+2] = uint8((bb + 0xffff - a) >> 8)
			}
		}
	}
	return out
}

// orient8 applies an EXIF orientation (1..8) so the image is upright.
func orient8(src *RGB, o int) *RGB {
	if o < 2 || o > 8 {
		return src
	}
	w, h := src.W, src.H
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := &RGB{W: dw, H: dh, Pix: make([]uint8, len(src.Pix))}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90 CW to display
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90 CCW to display
				dx, dy = y, w-1-x
			}
			s, d := (y*w+x)*3, (dy*dw+dx)*3
			dst.Pix[d], dst.Pix[d+1], dst.Pix[d+2] = src.Pix[s], src.Pix[s+1], src.Pix[s+2]
		}
	}
	return dst
}

// jpegOrientation reads the EXIF orientation tag from a JPEG's APP1 segment;
// 1 (upright) when absent or unreadable.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		if marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 || marker == 0xFF {
			i++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // image data starts: no EXIF before it
			return 1
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xE1 && len(seg) > 14 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var u16 func([]byte) int
	var u32 func([]byte) int
	switch string(t[:2]) {
	case "II":
		u16 = func(b []byte) int { return int(b[0]) | int(b[1])<<8 }
		u32 = func(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24 }
	case "MM":
		u16 = func(b []byte) int { return int(b[1]) | int(b[0])<<8 }
		u32 = func(b []byte) int { return int(b[3]) | int(b[2])<<8 | int(b[1])<<16 | int(b[0])<<24 }
	default:
		return 1
	}
	off := u32(t[4:8])
	if off < 8 || off+2 > len(t) {
		return 1
	}
	n := u16(t[off : off+2])
	for e := 0; e < n; e++ {
		p := off + 2 + 12*e
		if p+12 > len(t) {
			return 1
		}
		if u16(t[p:p+2]) == 0x0112 {
			if o := u16(t[p+8 : p+10]); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

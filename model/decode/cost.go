package decode

import "image/color"

// What decoding an image costs in memory, computed from its header alone (no
// second walk over the bytes) so the caller can reserve it (admission.Budget)
// before any pixel is decoded.

// Cost is an upper bound on the bytes that decoding and flattening an
// image with header h allocates, from its dimensions and pixel layout: a
// 7000x7000 16-bit RGBA PNG is 392 MB as decoded plus 147 MB of RGB, where
// the pixel count alone suggests far less.
func Cost(h Header, opt Options) int64 {
	px := int64(h.Width) * int64(h.Height)
	rgb := 3 * px
	// Decoder state: inflate window, bufio, two rows of up to 8 bytes a pixel.
	slack := int64(256<<10) + 16*int64(max(h.Width, h.Height))
	if h.Format == "jpeg" && LibjpegTurbo {
		// libjpeg-turbo keeps every DCT coefficient of a multi-scan file
		// (2 bytes per sample, up to 3 samples per pixel); its output, at the
		// DCT scale chosen, is copied once into Go memory.
		d := int64(jpegScaleDenom(h, opt))
		scaled := 3 * ((int64(h.Width) + d - 1) / d) * ((int64(h.Height) + d - 1) / d)
		out := 2 * scaled
		if h.Orientation >= 2 {
			out += scaled
		}
		if h.Scans > 1 {
			out += 6 * px
		}
		return out + slack
	}
	cost := px*bytesPerPixel(h) + rgb
	switch {
	case h.Interlaced:
		cost += px * bytesPerPixel(h) // Adam7: each pass is decoded apart, then merged
	case h.Scans > 1:
		cost += 4 * 3 * px // Go keeps int32 coefficients of every block
	}
	if h.Orientation >= 2 {
		cost += rgb
	}
	return cost + slack
}

// bytesPerPixel of the image the standard decoders return for h.
func bytesPerPixel(h Header) int64 {
	switch h.Model {
	case color.GrayModel, color.AlphaModel:
		if h.Format == "png" {
			return 4 // a tRNS chunk (not read by DecodeConfig) turns grey into NRGBA
		}
		return 1
	case color.Gray16Model, color.Alpha16Model:
		if h.Format == "png" {
			return 8
		}
		return 2
	case color.YCbCrModel:
		return 3 // 4:4:4 at most
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	}
	if _, ok := h.Model.(color.Palette); ok {
		return 1
	}
	return 8 // RGBA64, NRGBA64 and anything unexpected
}

// jpegScaleDenom picks the DCT scale 1/d (d = 8, 4, 2, 1) libjpeg-turbo
// decodes h at: the smallest whose output still covers MinW x MinH on the
// upright image.
func jpegScaleDenom(h Header, opt Options) int {
	minW, minH := opt.MinW, opt.MinH
	if h.Orientation >= 5 { // rotated by 90°: the stored image is transposed
		minW, minH = minH, minW
	}
	for d := 8; d > 1; d /= 2 {
		if minW > 0 && minH > 0 && (h.Width+d-1)/d >= minW && (h.Height+d-1)/d >= minH {
			return d
		}
	}
	return 1
}

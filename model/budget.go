package model

import (
	"errors"
	"fmt"
	"image/color"
	"sync"
)

// ErrMemoryFull means the memory budget is held by other requests right now:
// shed with HTTP 503 + Retry-After, like ErrBusy.
var ErrMemoryFull = errors.New("server busy: the memory budget for uploads and decodes is in use")

// Budget is a process-wide count of bytes held by in-flight request bodies and
// image decodes. Admission is all or nothing and never waits: a request that
// does not fit is shed (HTTP 503 + Retry-After) instead of pushing the
// process past its container's memory limit.
type Budget struct {
	mu          sync.Mutex
	total, used int64
}

// DefaultMemoryBudget suits a 512 MB container: the model, ONNX Runtime's
// arenas and the Go runtime need the other half.
const DefaultMemoryBudget = 256 << 20

// NewBudget returns a budget of total bytes (total <= 0: DefaultMemoryBudget).
func NewBudget(total int64) *Budget {
	if total <= 0 {
		total = DefaultMemoryBudget
	}
	return &Budget{total: total}
}

// TryAcquire takes n bytes if they are free now.
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.total-b.used {
		return false
	}
	b.used += n
	return true
}

// Release gives back n bytes taken by TryAcquire.
func (b *Budget) Release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// Total and InUse are for errors, metrics and tests.
func (b *Budget) Total() int64 { return b.total }
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// fits refuses a request of n bytes that could never be admitted.
func (b *Budget) fits(n int64, what string) error {
	if n > b.total {
		return fmt.Errorf("%w: %s needs about %d MiB, over the %d MiB memory budget (MEMORY_BUDGET)",
			ErrImageTooLarge, what, n>>20, b.total>>20)
	}
	return nil
}

// reserve takes n bytes for one request, or fails with ErrImageTooLarge when n
// could never fit and ErrMemoryFull while other requests hold too much. Call
// the returned func to give the bytes back.
func (b *Budget) reserve(n int64, what string) (func(), error) {
	if err := b.fits(n, what); err != nil {
		return nil, err
	}
	if !b.TryAcquire(n) {
		return nil, ErrMemoryFull
	}
	return func() { b.Release(n) }, nil
}

// decodeCost is an upper bound on the bytes that decoding and flattening an
// image with header h allocates, from its dimensions and pixel layout: a
// 7000x7000 16-bit RGBA PNG is 392 MB as decoded plus 147 MB of RGB, where
// the pixel count alone suggests far less.
func decodeCost(h Header, data []byte, opt DecodeOptions) int64 {
	px := int64(h.Width) * int64(h.Height)
	rgb := 3 * px
	// Decoder state: inflate window, bufio, two rows of up to 8 bytes a pixel.
	slack := int64(256<<10) + 16*int64(max(h.Width, h.Height))
	if h.Format == "jpeg" && fastJPEG {
		// libjpeg-turbo keeps every DCT coefficient of a multi-scan file
		// (2 bytes per sample, up to 3 samples per pixel); its output, at the
		// DCT scale chosen, is copied once into Go memory.
		d := int64(jpegScaleDenom(h, opt))
		scaled := 3 * ((int64(h.Width) + d - 1) / d) * ((int64(h.Height) + d - 1) / d)
		out := 2 * scaled
		if h.Orientation >= 2 {
			out += scaled
		}
		if jpegScans(data, 1) > 1 {
			out += 6 * px
		}
		return out + slack
	}
	cost := px*bytesPerPixel(h) + rgb
	switch {
	case h.Format == "png" && len(data) > 28 && data[28] == 1:
		cost += px * bytesPerPixel(h) // Adam7: each pass is decoded apart, then merged
	case h.Format == "jpeg" && jpegScans(data, 1) > 1:
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
func jpegScaleDenom(h Header, opt DecodeOptions) int {
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

// Package preprocess turns upright RGB images into the model's input tensor,
// as its spec.Spec says: a resize identical to Pillow's (resample.go), the
// centre crop, normalisation and NCHW or NHWC layout. It mirrors
// model/training/preprocess.py; resources/parity.json holds the two together.
package preprocess

import (
	"catsdogs/model/decode"
	"catsdogs/model/spec"
	"sync"
)

// Preprocessor fills input tensors for one spec, safe for concurrent use.
type Preprocessor struct {
	spec spec.Spec
	// lut[c][v] is the normalised value of 8-bit pixel v in output channel c,
	// computed once: per-pixel work is then a table lookup.
	lut  [3][256]float32
	src  [3]int // source RGB channel for each output channel (BGR swaps)
	bufs sync.Pool
}

// New precomputes lookup tables for s.
func New(s spec.Spec) *Preprocessor {
	p := &Preprocessor{spec: s, src: [3]int{0, 1, 2}}
	if s.ChannelOrder == spec.OrderBGR {
		p.src = [3]int{2, 1, 0}
	}
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			// float32 like numpy in preprocess.py: it divides by 255 where we
			// multiply by pixel_scale (1/255); the two differ by at most 1 ulp.
			x := float32(v) * s.PixelScale
			p.lut[c][v] = (x - s.Mean[c]) / s.Std[c]
		}
	}
	return p
}

// TensorLen is the number of float32 values per image.
func (p *Preprocessor) TensorLen() int { return 3 * p.spec.Width * p.spec.Height }

// DecodeOptions returns the smallest decode size that still covers the input,
// so JPEGs can be decoded at a reduced DCT scale without upscaling later.
func (p *Preprocessor) DecodeOptions(maxPixels int) decode.Options {
	s := p.spec
	if s.Resize == spec.ResizeCenterCrop {
		return decode.Options{MaxPixels: maxPixels, MinW: s.ResizeShorter, MinH: s.ResizeShorter}
	}
	return decode.Options{MaxPixels: maxPixels, MinW: s.Width, MinH: s.Height}
}

// geometry returns the resized size and the crop window for an image w x h.
func (p *Preprocessor) geometry(w, h int) (nw, nh, left, top int) {
	s := p.spec
	if s.Resize == spec.ResizeStretch {
		return s.Width, s.Height, 0, 0
	}
	nw, nh = scaledSize(w, h, s.ResizeShorter)
	nw, nh = max(nw, s.Width), max(nh, s.Height)
	return nw, nh, (nw - s.Width) / 2, (nh - s.Height) / 2
}

// scaledSize gives the size with the shorter side equal to r, rounded half up
// in integers (identical to preprocess.scaled_size).
func scaledSize(w, h, r int) (int, int) {
	if w <= h {
		return r, (2*h*r + w) / (2 * w)
	}
	return (2*w*r + h) / (2 * h), r
}

type scratch struct{ crop, tmp []uint8 }

// Fill writes img's tensor (one batch item) into dst, which must have
// TensorLen() elements.
func (p *Preprocessor) Fill(dst []float32, img *decode.RGB) {
	s := p.spec
	W, H := s.Width, s.Height
	nw, nh, left, top := p.geometry(img.W, img.H)
	sc, _ := p.bufs.Get().(*scratch)
	if sc == nil {
		sc = &scratch{}
	}
	if cap(sc.crop) < W*H*3 {
		sc.crop = make([]uint8, W*H*3)
	}
	crop := sc.crop[:W*H*3]
	sc.tmp = resizeCrop(crop, img, nw, nh, left, top, W, H, sc.tmp)
	plane := W * H
	if s.Layout == spec.LayoutNCHW {
		for c := 0; c < 3; c++ {
			lut, sc0 := &p.lut[c], p.src[c]
			out := dst[c*plane : (c+1)*plane]
			for i := range out {
				out[i] = lut[crop[3*i+sc0]]
			}
		}
	} else {
		for i := 0; i < plane; i++ {
			for c := 0; c < 3; c++ {
				dst[3*i+c] = p.lut[c][crop[3*i+p.src[c]]]
			}
		}
	}
	p.bufs.Put(sc)
}

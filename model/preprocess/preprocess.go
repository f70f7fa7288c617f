package model

import "sync"

// Preprocessor turns upright RGB images into input tensors for one Spec. It
// mirrors model/training/preprocess.py; resources/parity.json holds the two
// together.
type Preprocessor struct {
	spec Spec
	// lut[c][v] is the normalised value of 8-bit pixel v in output channel c,
	// computed once: per-pixel work is then a table lookup.
	lut  [3][256]float32
	src  [3]int // source RGB channel for each output channel (BGR swaps)
	bufs sync.Pool
}

// NewPreprocessor precomputes lookup tables for spec.
func NewPreprocessor(spec Spec) *Preprocessor {
	p := &Preprocessor{spec: spec, src: [3]int{0, 1, 2}}
	if spec.ChannelOrder == OrderBGR {
		p.src = [3]int{2, 1, 0}
	}
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			// float32 like numpy in preprocess.py: it divides by 255 where we
			// multiply by pixel_scale (1/255); the two differ by at most 1 ulp.
			x := float32(v) * spec.PixelScale
			p.lut[c][v] = (x - spec.Mean[c]) / spec.Std[c]
		}
	}
	return p
}

// TensorLen is the number of float32 values per image.
func (p *Preprocessor) TensorLen() int { return 3 * p.spec.Width * p.spec.Height }

// DecodeOptions returns the smallest decode size that still covers the input,
// so JPEGs can be decoded at a reduced DCT scale without upscaling later.
func (p *Preprocessor) DecodeOptions(maxPixels int) DecodeOptions {
	s := p.spec
	if s.Resize == ResizeCenterCrop {
		return DecodeOptions{MaxPixels: maxPixels, MinW: s.ResizeShorter, MinH: s.ResizeShorter}
	}
	return DecodeOptions{MaxPixels: maxPixels, MinW: s.Width, MinH: s.Height}
}

// geometry returns the resized size and the crop window for an image w x h.
func (p *Preprocessor) geometry(w, h int) (nw, nh, left, top int) {
	s := p.spec
	if s.Resize == ResizeStretch {
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
func (p *Preprocessor) Fill(dst []float32, img *RGB) {
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
	if s.Layout == LayoutNCHW {
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

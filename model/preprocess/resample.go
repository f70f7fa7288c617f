package preprocess

import (
	"catsdogs/model/decode"
	"math"
)

// This file resizes 8-bit RGB images exactly like Pillow's Image.resize with
// Image.BILINEAR (a triangle filter whose support widens with the shrink factor,
// so large reductions average every source pixel instead of aliasing), including
// its 22-bit fixed-point arithmetic and horizontal-then-vertical pass order.
// Training preprocesses with Pillow, so bit-identical resizing here removes the
// most common source of train/serve skew; resources/parity.json checks it.

const precisionBits = 32 - 8 - 2

// coeffs holds, for each output index of a window, the first input index, the
// number of input taps and the fixed-point weights (ksize per output index:
// every tap count is at most ksize, and may equal it; plus one zero at the
// end so a kernel may read weights in pairs).
type coeffs struct {
	bounds []int32 // 2 per output: first input index, tap count
	k      []int32
	ksize  int
}

func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// precomputeCoeffs mirrors Pillow's precompute_coeffs + normalize_coeffs_8bpc
// for resizing inSize samples to outSize samples, but only for the n output
// indexes from lo: each output's weights depend on its own index alone, and
// sizing the tables for the whole scaled side let a 1 x 10,000,000 upload ask
// for 20 GB. Entry i of the result describes output lo+i.
func precomputeCoeffs(inSize, outSize, lo, n int) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := float64(1.0 * filterscale)
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{bounds: make([]int32, n*2), k: make([]int32, n*ksize+1), ksize: ksize}
	pre := make([]float64, ksize)
	ss := 1.0 / filterscale
	for i := 0; i < n; i++ {
		center := float64(float64(lo+i)+0.5) * scale
		xmin := int(float64(center - support + 0.5))
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(float64(center + support + 0.5))
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := bilinearFilter(float64(float64(float64(x+xmin)-center)+0.5) * ss)
			pre[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			w := pre[x]
			if ww != 0 {
				w /= ww
			}
			// Round half away from zero, as Pillow's (int)(±0.5 + w * 2^22).
			f := float64(w * (1 << precisionBits))
			if w < 0 {
				c.k[i*ksize+x] = int32(-0.5 + f)
			} else {
				c.k[i*ksize+x] = int32(0.5 + f)
			}
		}
		c.bounds[2*i] = int32(xmin)
		c.bounds[2*i+1] = int32(xmax)
	}
	return c
}

func clip8(v int32) uint8 {
	if v <= 0 {
		return 0
	}
	v >>= precisionBits
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// resizeCrop resizes src (w x h, 3 bytes per pixel) to nw x nh and returns only
// the window [left, left+cw) x [top, top+ch) of the result, packed RGB. Each
// output pixel depends only on its own coefficients, so computing just the
// window gives the same bytes as resizing everything and cropping afterwards.
// dst must hold cw*ch*3 bytes; tmp is scratch space that is grown as needed.
func resizeCrop(dst []uint8, src *decode.RGB, nw, nh, left, top, cw, ch int, tmp []uint8) []uint8 {
	if nw == src.W && nh == src.H {
		for y := 0; y < ch; y++ {
			copy(dst[y*cw*3:(y+1)*cw*3], src.Pix[((top+y)*src.W+left)*3:((top+y)*src.W+left+cw)*3])
		}
		return tmp
	}
	needH := nw != src.W
	needV := nh != src.H
	var hc, vc coeffs
	if needH {
		hc = precomputeCoeffs(src.W, nw, left, cw)
	}
	if needV {
		vc = precomputeCoeffs(src.H, nh, top, ch)
	}
	// Source rows the vertical pass will read for the cropped output rows.
	rowLo, rowHi := top, top+ch
	if needV {
		rowLo = int(vc.bounds[0])
		rowHi = int(vc.bounds[2*(ch-1)] + vc.bounds[2*(ch-1)+1])
	}
	// Horizontal pass: rows [rowLo, rowHi), output columns [left, left+cw).
	rows := rowHi - rowLo
	midStride := cw * 3
	if cap(tmp) < rows*midStride {
		tmp = make([]uint8, rows*midStride)
	}
	mid := tmp[:rows*midStride]
	if needH {
		hpass(mid, src.Pix[rowLo*src.W*3:rowHi*src.W*3], src.W*3, rows, &hc)
	} else {
		// No horizontal change: copy the needed columns of the source.
		for y := 0; y < rows; y++ {
			copy(mid[y*midStride:(y+1)*midStride], src.Pix[((rowLo+y)*src.W+left)*3:((rowLo+y)*src.W+left+cw)*3])
		}
	}
	if !needV {
		copy(dst[:ch*midStride], mid[(top-rowLo)*midStride:(top-rowLo+ch)*midStride])
		return tmp
	}
	// The vertical pass reads mid, whose row 0 is source row rowLo.
	for yy := 0; yy < ch; yy++ {
		vc.bounds[2*yy] -= int32(rowLo)
	}
	vpass(dst[:ch*midStride], mid, midStride, ch, &vc)
	return tmp
}

// hpassGo is the horizontal pass: each of rows rows of in (stride bytes apart)
// becomes c's len(c.bounds)/2 pixels in out, packed.
func hpassGo(out, in []uint8, stride, rows int, c *coeffs) {
	cw := len(c.bounds) / 2
	for y := 0; y < rows; y++ {
		row := in[y*stride:]
		o := out[y*cw*3 : (y+1)*cw*3]
		for xx := 0; xx < cw; xx++ {
			xmin, n := int(c.bounds[2*xx]), int(c.bounds[2*xx+1])
			k := c.k[xx*c.ksize : xx*c.ksize+n]
			p := row[xmin*3 : (xmin+n)*3]
			r, g, b := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
			for i, w := range k {
				r += int32(p[3*i]) * w
				g += int32(p[3*i+1]) * w
				b += int32(p[3*i+2]) * w
			}
			o[3*xx], o[3*xx+1], o[3*xx+2] = clip8(r), clip8(g), clip8(b)
		}
	}
}

// vpassGo is the vertical pass: output row yy of out (stride bytes wide) mixes
// rows c.bounds[2*yy]... of mid. One output row at a time with a row of
// accumulators, so every read is sequential.
func vpassGo(out, mid []uint8, stride, ch int, c *coeffs) {
	acc := make([]int32, stride)
	for yy := 0; yy < ch; yy++ {
		ymin, n := int(c.bounds[2*yy]), int(c.bounds[2*yy+1])
		k := c.k[yy*c.ksize : yy*c.ksize+n]
		for x := range acc {
			acc[x] = 1 << (precisionBits - 1)
		}
		for i, w := range k {
			row := mid[(ymin+i)*stride : (ymin+i+1)*stride]
			for x, v := range row {
				acc[x] += int32(v) * w
			}
		}
		o := out[yy*stride : (yy+1)*stride]
		for x, a := range acc {
			o[x] = clip8(a)
		}
	}
}

// Package bombs generates hostile image files for tests: small uploads that
// are expensive to decode. They are built on demand so none is committed.
package bombs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"runtime"
)

// PNG colour types.
const (
	Grey      = 0
	RGB       = 2
	GreyAlpha = 4
	RGBA      = 6
)

// ZeroPNG is a w x h PNG of all-zero samples with the given bit depth (8 or
// 16) and colour type. Rows of zeros deflate about 1000:1, so a 1 x 10,000,000
// greyscale strip is ~20 KB and a 7000 x 7000 16-bit RGBA image ~400 KB. Rows
// are streamed through the compressor, so the generator itself stays small.
func ZeroPNG(w, h, depth, colorType int) []byte {
	channels := map[int]int{Grey: 1, RGB: 3, GreyAlpha: 2, RGBA: 4}[colorType]
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	row := make([]byte, 1+w*channels*depth/8) // filter byte 0 (None), then samples
	for y := 0; y < h; y++ {
		zw.Write(row)
	}
	zw.Close()

	var b bytes.Buffer
	writePNGHeader(&b, w, h, depth, colorType)
	writeChunk(&b, "IDAT", idat.Bytes())
	writeChunk(&b, "IEND", nil)
	return b.Bytes()
}

// PNGHeader is a PNG signature and an IHDR claiming w x h 8-bit RGB pixels,
// and nothing else: whatever reads it must refuse or fail before decoding.
func PNGHeader(w, h int) []byte {
	var b bytes.Buffer
	writePNGHeader(&b, w, h, 8, RGB)
	return b.Bytes()
}

func writePNGHeader(b *bytes.Buffer, w, h, depth, colorType int) {
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(depth), byte(colorType)
	writeChunk(b, "IHDR", ihdr)
}

func writeChunk(b *bytes.Buffer, typ string, data []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(data)))
	body := append([]byte(typ), data...)
	b.Write(body)
	_ = binary.Write(b, binary.BigEndian, crc32.ChecksumIEEE(body))
}

// Allocated reports the bytes f allocated on the Go heap: how tests show that
// refusing a bomb cost nothing. TotalAlloc only grows, so a concurrent GC
// hides nothing.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// GreyPNG is a w x h all-black 8-bit greyscale PNG.
func GreyPNG(w, h int) []byte { return ZeroPNG(w, h, 8, Grey) }

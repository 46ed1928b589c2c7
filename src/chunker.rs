//! Content-defined chunking: FastCDC 2020 with a keyed gear table, two size profiles chosen by
//! sniffing the file, and format-aware region boundaries.
//!
//! Invariants (format-spec/chunking.md is normative; golden tests pin them):
//! - Cut points depend only on the file's bytes and the repository's gear table.
//! - A file is first split into regions at format boundaries (where a JPEG's metadata ends, at
//!   ISO-BMFF top-level boxes); each region is chunked on its own, so an edit to a photo's EXIF
//!   header changes only the header's chunk, never the image data's.
//! - Chunks concatenate to the input, and every chunk except a region's last is within
//!   `[min, max]` bytes.

use std::io::{self, Read};

use fastcdc::v2020::{Normalization, cut_gear, select_masks};

/// Chunk-size limits of one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub min: usize,
    pub avg: usize,
    pub max: usize,
}

/// Media, databases, anything binary: few, large chunks keep the index small (10 TB ~ 10 M
/// chunks) and photos are never similar below a whole-file level anyway.
pub const BULK: Profile = Profile { name: "bulk", min: 256 << 10, avg: 1 << 20, max: 4 << 20 };
/// Text (XML call-log and SMS exports, vcf, json): small chunks so that a new export that
/// repeats yesterday's records costs about its new records only.
pub const TEXT: Profile = Profile { name: "text", min: 16 << 10, avg: 64 << 10, max: 256 << 10 };

/// Bytes read before choosing a profile and region boundaries.
pub const HEAD_LEN: usize = 256 << 10;
/// Scratch space [`Chunker::chunk_reader`] needs: the head plus two maximal bulk chunks.
pub const BUFFER_LEN: usize = HEAD_LEN + 2 * BULK.max;
/// Bytes of the head inspected to tell text from binary.
const SNIFF_LEN: usize = 8 << 10;

/// Text means: only printable bytes, tab, CR or LF, and valid UTF-8 (a sequence cut off by the
/// end of the sample is allowed).
pub fn choose_profile(head: &[u8]) -> Profile {
    let sample = &head[..head.len().min(SNIFF_LEN)];
    if sample.is_empty() || sample.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') || b == 0x7f) {
        return BULK;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => TEXT,
        Err(e) if e.error_len().is_none() => TEXT,
        Err(_) => BULK,
    }
}

/// Offsets (> 0, ascending) where a new region starts, found from the file's head alone.
pub fn region_starts(head: &[u8]) -> Vec<u64> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return jpeg_scan_start(head).into_iter().collect();
    }
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        return isobmff_box_starts(head);
    }
    if head.starts_with(b"<?xml") {
        return xml_root_tag_end(head).into_iter().collect();
    }
    Vec::new()
}

/// XML: backup apps write the record count into the root start tag (`<calls count="1234">`),
/// so that tag is its own region and a changed count does not disturb the first records' chunk.
/// Returns the offset just after the `>` of the first tag that is not `<?…`, `<!…` or `</…`.
fn xml_root_tag_end(head: &[u8]) -> Option<u64> {
    let mut pos = 0;
    loop {
        let open = pos + head[pos..].iter().position(|&b| b == b'<')?;
        let next = *head.get(open + 1)?;
        let close = open + head[open..].iter().position(|&b| b == b'>')?;
        if next != b'?' && next != b'!' && next != b'/' {
            return Some(close as u64 + 1);
        }
        pos = close + 1;
    }
}

/// JPEG: everything before the first start-of-scan marker is metadata (EXIF, XMP, thumbnails,
/// tables). Returns the offset of the SOS marker.
fn jpeg_scan_start(head: &[u8]) -> Option<u64> {
    let mut pos = 2usize;
    loop {
        if *head.get(pos)? != 0xFF {
            return None;
        }
        let marker = *head.get(pos + 1)?;
        match marker {
            0xFF => pos += 1, // fill byte
            0xDA => return Some(pos as u64),
            0x01 | 0xD0..=0xD7 => pos += 2,
            0xD9 => return None,
            _ => {
                let len = u16::from_be_bytes([*head.get(pos + 2)?, *head.get(pos + 3)?]) as usize;
                if len < 2 {
                    return None;
                }
                pos += 2 + len;
            }
        }
    }
}

/// ISO-BMFF (MP4, MOV, HEIC): the start of every top-level box whose position follows from
/// box headers inside the head. A metadata box that grows shifts the media box, which is then
/// chunked from its own start and still deduplicates.
fn isobmff_box_starts(head: &[u8]) -> Vec<u64> {
    let mut starts = Vec::new();
    let mut pos: u64 = 0;
    // A box that ends beyond the head (or beyond any address) ends the scan.
    while let Some(header) = usize::try_from(pos)
        .ok()
        .filter(|&at| at < head.len())
        .and_then(|at| head.get(at..at + 16).or_else(|| head.get(at..at + 8)))
    {
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let size = match size32 {
            0 => break, // extends to the end of the file
            1 if header.len() >= 16 => u64::from_be_bytes(header[8..16].try_into().unwrap_or([0; 8])),
            1 => break,
            s => s,
        };
        if size < 8 {
            break;
        }
        pos = match pos.checked_add(size) {
            Some(p) => p,
            None => break,
        };
        starts.push(pos);
    }
    starts
}

/// A chunker bound to one repository's gear table.
pub struct Chunker {
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Chunker {
    pub fn new(gear: &[u64; 256]) -> Chunker {
        let mut gear_ls = Box::new([0u64; 256]);
        for (ls, g) in gear_ls.iter_mut().zip(gear.iter()) {
            *ls = g << 1;
        }
        Chunker { gear: Box::new(*gear), gear_ls }
    }

    /// Length of the next chunk of `window` (the rest of the current region, or at least
    /// `profile.max` bytes of it).
    fn cut(&self, window: &[u8], p: &Profile) -> usize {
        let (mask_s, mask_l) = select_masks(p.avg, Normalization::Level1);
        let (_, len) = cut_gear(
            window,
            p.min,
            p.avg,
            p.max,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
            &self.gear[..],
            &self.gear_ls[..],
        );
        len.max(1).min(window.len())
    }

    /// Chunk lengths of `data` under an explicit profile, ignoring regions (for parameter studies).
    pub fn chunk_lengths_with(&self, data: &[u8], profile: &Profile) -> Vec<usize> {
        let mut lengths = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let window = &data[pos..data.len().min(pos + profile.max)];
            let len = self.cut(window, profile);
            lengths.push(len);
            pos += len;
        }
        lengths
    }

    /// Chunk lengths of an in-memory file (tests and test vectors).
    pub fn chunk_lengths(&self, data: &[u8]) -> Vec<usize> {
        let mut lengths = Vec::new();
        let _ = self.chunk_reader(data, &mut Vec::new(), &mut |c: &[u8]| {
            lengths.push(c.len());
            Ok::<(), ()>(())
        });
        lengths
    }

    /// Streams `reader` and calls `emit` with each chunk in order; returns the bytes read.
    /// `buf` is scratch space reused across calls (grown once to [`BUFFER_LEN`] bytes), so
    /// chunking many small files costs no allocation.
    pub fn chunk_reader<R: Read, E>(
        &self,
        mut reader: R,
        buf: &mut Vec<u8>,
        emit: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, ChunkError<E>> {
        if buf.len() < BUFFER_LEN {
            buf.resize(BUFFER_LEN, 0);
        }
        let mut end = fill(&mut reader, buf, 0, HEAD_LEN)?;
        let profile = choose_profile(&buf[..end]);
        let mut boundaries = region_starts(&buf[..end]).into_iter().peekable();
        let mut start = 0usize; // first unconsumed byte in buf
        let mut offset: u64 = 0; // file offset of buf[start]
        let mut eof = end < HEAD_LEN;
        loop {
            if !eof && end - start < profile.max {
                if start > 0 {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                let want = buf.len();
                let got = fill(&mut reader, buf, end, want)?;
                eof = got < want;
                end = got;
            }
            if start == end {
                return Ok(offset);
            }
            while boundaries.peek().is_some_and(|&b| b <= offset) {
                boundaries.next();
            }
            let mut window = end - start;
            if let Some(&b) = boundaries.peek() {
                window = window.min(usize::try_from(b - offset).unwrap_or(usize::MAX));
            }
            let len = self.cut(&buf[start..start + window], &profile);
            emit(&buf[start..start + len]).map_err(ChunkError::Emit)?;
            start += len;
            offset += len as u64;
        }
    }
}

/// Why chunking stopped: the source failed, or the consumer did.
#[derive(Debug)]
pub enum ChunkError<E> {
    Read(io::Error),
    Emit(E),
}

impl<E> From<io::Error> for ChunkError<E> {
    fn from(e: io::Error) -> Self {
        ChunkError::Read(e)
    }
}

/// Reads into `buf[from..to]` until full or end of input; returns the new fill level.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8], mut from: usize, to: usize) -> io::Result<usize> {
    while from < to {
        match reader.read(&mut buf[from..to]) {
            Ok(0) => break,
            Ok(n) => from += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keys;
    use proptest::prelude::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn chunker() -> Chunker {
        Chunker::new(Keys::unencrypted().gear())
    }

    #[test]
    fn bulk_chunks_respect_limits_and_concatenate() {
        let data = pseudo_random(20 << 20, 1);
        let lengths = chunker().chunk_lengths(&data);
        assert_eq!(lengths.iter().sum::<usize>(), data.len());
        for &l in &lengths[..lengths.len() - 1] {
            assert!((BULK.min..=BULK.max).contains(&l), "chunk of {l} bytes");
        }
        let mean = data.len() / lengths.len();
        assert!((BULK.avg / 2..BULK.avg * 2).contains(&mean), "mean {mean}");
    }

    #[test]
    fn insertion_only_disturbs_nearby_chunks() {
        let data = pseudo_random(16 << 20, 2);
        let mut edited = data.clone();
        edited.splice(8 << 20..8 << 20, b"inserted".iter().copied());
        let a = chunker().chunk_lengths(&data);
        let b = chunker().chunk_lengths(&edited);
        let common = a.iter().filter(|l| b.contains(l)).count();
        assert!(common + 3 >= a.len(), "{common} of {} chunks survive", a.len());
    }

    #[test]
    fn jpeg_metadata_is_its_own_region() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x10, 0x00];
        jpeg.extend(pseudo_random(0x1000 - 2, 3)); // APP1 payload
        let sos = jpeg.len();
        jpeg.extend([0xFF, 0xDA, 0x00, 0x08]);
        jpeg.extend(pseudo_random(6 << 20, 4));
        assert_eq!(region_starts(&jpeg[..HEAD_LEN]), vec![sos as u64]);
        let lengths = chunker().chunk_lengths(&jpeg);
        assert_eq!(lengths[0], sos, "the header is one chunk");
        // Growing the EXIF block leaves every image-data chunk unchanged.
        let mut edited = jpeg[..4].to_vec();
        edited.extend([0x11, 0x00]);
        edited.extend(pseudo_random(0x1100 - 2, 5));
        edited.extend_from_slice(&jpeg[sos..]);
        let edited_lengths = chunker().chunk_lengths(&edited);
        assert_eq!(edited_lengths[1..], lengths[1..]);
    }

    #[test]
    fn xml_root_tag_is_a_region() {
        let xml = b"<?xml version='1.0'?>\n<!-- c -->\n<calls count=\"3\">\n  <call a=\"1\" />\n</calls>\n";
        let end = xml.iter().position(|&b| b == b'"').unwrap() + 4;
        assert_eq!(region_starts(xml), vec![end as u64]);
        assert_eq!(region_starts(b"<?xml no root"), Vec::<u64>::new());
    }

    #[test]
    fn isobmff_boxes_are_regions() {
        let mut mp4 = Vec::new();
        mp4.extend(24u32.to_be_bytes());
        mp4.extend(b"ftypisom");
        mp4.extend([0u8; 12]);
        mp4.extend(1000u32.to_be_bytes());
        mp4.extend(b"meta");
        mp4.extend(vec![0u8; 992]);
        mp4.extend(0u32.to_be_bytes());
        mp4.extend(b"mdat");
        assert_eq!(region_starts(&mp4), vec![24, 1024]);
    }

    #[test]
    fn isobmff_sizes_that_reach_past_any_address_end_the_scan() {
        let mut mp4 = Vec::new();
        mp4.extend(24u32.to_be_bytes());
        mp4.extend(b"ftypisom");
        mp4.extend([0u8; 12]);
        mp4.extend(1u32.to_be_bytes());
        mp4.extend(b"free");
        mp4.extend((u64::MAX - 30).to_be_bytes());
        mp4.extend([0u8; 64]);
        assert_eq!(region_starts(&mp4), vec![24, u64::MAX - 6]);
    }

    #[test]
    fn profile_sniffing() {
        assert_eq!(choose_profile(b"<?xml version=\"1.0\"?>\n<calls count=\"3\">").name, "text");
        assert_eq!(choose_profile(&[0xFF, 0xD8, 0xFF, 0xE0]).name, "bulk");
        assert_eq!(choose_profile(&pseudo_random(8192, 9)).name, "bulk");
        assert_eq!(choose_profile("grüße".as_bytes()).name, "text");
        assert_eq!(choose_profile(b"").name, "bulk");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn chunks_concatenate_to_input(len in 0usize..3_000_000, seed: u64, text: bool) {
            let mut data = pseudo_random(len, seed);
            if text {
                for b in data.iter_mut() { *b = b'a' + (*b % 26); }
            }
            let mut out = Vec::new();
            let read = chunker().chunk_reader(&data[..], &mut Vec::new(), &mut |c: &[u8]| { out.extend_from_slice(c); Ok::<(), ()>(()) }).unwrap();
            prop_assert_eq!(read as usize, data.len());
            prop_assert_eq!(out, data);
        }
    }
}

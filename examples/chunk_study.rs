//! Measures what chunking parameters cost on phone data; the figures in
//! format-spec/chunking.md come from `cargo run --release --example chunk_study`.

#[path = "../tests/common/phone.rs"]
mod phone;

use std::collections::HashSet;
use std::time::Instant;

use snap::chunker::{self, Chunker, Profile};
use snap::crypto::{Keys, MasterKey};

fn chunks<'a>(data: &'a [u8], lengths: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    for &l in lengths {
        out.push(&data[pos..pos + l]);
        pos += l;
    }
    out
}

/// Bytes (raw, zstd-3) of `new`'s chunks that `old` does not have.
fn new_bytes(old: &[u8], new: &[u8], c: &Chunker, p: &Profile) -> (usize, usize, usize) {
    let have: HashSet<&[u8]> = chunks(old, &c.chunk_lengths_with(old, p)).into_iter().collect();
    let new_chunks = chunks(new, &c.chunk_lengths_with(new, p));
    let fresh: Vec<&[u8]> = new_chunks.iter().copied().filter(|c| !have.contains(c)).collect();
    let raw: usize = fresh.iter().map(|c| c.len()).sum();
    let packed: usize = fresh.iter().map(|c| zstd::bulk::compress(c, 3).map(|z| z.len()).unwrap_or(c.len())).sum();
    (raw, packed, new_chunks.len())
}

fn main() {
    let keys = Keys::encrypted(&MasterKey::from_bytes([7; 32]));
    let c = Chunker::new(keys.gear());
    let kib = |k: usize| k << 10;
    let candidates = [
        Profile { name: "8/32/128 KiB", min: kib(8), avg: kib(32), max: kib(128) },
        Profile { name: "16/64/256 KiB", min: kib(16), avg: kib(64), max: kib(256) },
        Profile { name: "64/256/1024 KiB", min: kib(64), avg: kib(256), max: kib(1024) },
        Profile { name: "256 KiB/1/4 MiB", min: kib(256), avg: kib(1024), max: kib(4096) },
    ];

    println!("## Daily call-log export: 40,000 records, the next day's adds 60");
    let day1 = phone::export("call", 40_000);
    let day2 = phone::export("call", 40_060);
    let appended = day2.len() - day1.len();
    let whole_z = zstd::bulk::compress(&day2, 3).map(|z| z.len()).unwrap_or(0);
    println!("export {} bytes, new records {} bytes; whole file zstd-3: {} bytes", day2.len(), appended, whole_z);
    println!("| profile | chunks | new bytes (raw) | new bytes (zstd-3) |");
    println!("|---|---|---|---|");
    for p in &candidates {
        let (raw, packed, n) = new_bytes(&day1, &day2, &c, p);
        println!("| {} | {} | {} | {} |", p.name, n, raw, packed);
    }
    // What snap does: the TEXT profile plus the XML root-tag region.
    let have: HashSet<&[u8]> = chunks(&day1, &c.chunk_lengths(&day1)).into_iter().collect();
    let fresh: Vec<&[u8]> = chunks(&day2, &c.chunk_lengths(&day2)).into_iter().filter(|x| !have.contains(x)).collect();
    let raw: usize = fresh.iter().map(|x| x.len()).sum();
    let packed: usize = fresh.iter().map(|x| zstd::bulk::compress(x, 3).map(|z| z.len()).unwrap_or(x.len())).sum();
    println!("| snap v1 (16/64/256 KiB + root-tag region) | {} | {} | {} |", c.chunk_lengths(&day2).len(), raw, packed);

    println!("\n## EXIF edit of a 4 MiB photo (rating added)");
    let photo = phone::jpeg(99, 4 << 20, None);
    let seg_len = 2 + u16::from_be_bytes([photo[4], photo[5]]) as usize;
    let mut edited = photo[..2].to_vec();
    edited.extend(phone::exif_segment(99, Some(4)));
    edited.extend_from_slice(&photo[2 + seg_len..]);
    for (label, regions) in [("CDC only", false), ("CDC + JPEG regions", true)] {
        let lengths = |d: &[u8]| if regions { c.chunk_lengths(d) } else { c.chunk_lengths_with(d, &chunker::BULK) };
        let have: HashSet<&[u8]> = chunks(&photo, &lengths(&photo)).into_iter().collect();
        let fresh: usize =
            chunks(&edited, &lengths(&edited)).into_iter().filter(|c| !have.contains(c)).map(|c| c.len()).sum();
        println!("- {label}: {fresh} new bytes");
    }

    println!("\n## 1 GiB of incompressible media: chunks, index memory, speed");
    let mut media = Vec::new();
    phone::Rng::new(5).fill(&mut media, 1 << 30);
    println!("| profile | chunks | index (48 B/chunk) | chunking MB/s |");
    println!("|---|---|---|---|");
    for p in &candidates {
        let t = Instant::now();
        let n = c.chunk_lengths_with(&media, p).len();
        let mbs = 1024.0 / t.elapsed().as_secs_f64();
        println!("| {} | {} | {} KiB | {:.0} |", p.name, n, n * 48 / 1024, mbs);
    }
}

//! How much memory and lookup time the in-memory index costs at 10 million chunks (a 10 TB
//! repository at 1 MiB chunks): `cargo run --release --example index_memory [CHUNKS]`.

use std::time::Instant;

use snap::format::index::PackContents;
use snap::format::pack::{BlobEntry, BlobKind};
use snap::id::Id;
use snap::index::IndexBuilder;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let chunks: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let per_pack = 30u64; // 32 MiB packs of ~1 MiB chunks
    let id = |i: u64| Id(*blake3::hash(&i.to_le_bytes()).as_bytes());
    let start = Instant::now();
    let mut builder = IndexBuilder::default();
    let mut i = 0;
    while i < chunks {
        let n = per_pack.min(chunks - i);
        let blobs = (i..i + n)
            .map(|j| BlobEntry {
                kind: BlobKind::Data,
                compressed: false,
                id: id(j),
                offset: ((j - i) << 20) as u32,
                stored_len: 1 << 20,
                raw_len: 1 << 20,
            })
            .collect();
        builder.add(&PackContents { pack: id(u64::MAX - i), blobs });
        i += n;
    }
    let index = builder.finish();
    let built = start.elapsed();
    let probes: Vec<Id> = (0..1_000_000u64).map(|k| id(k * 7 % chunks)).collect();
    let misses: Vec<Id> = (0..1_000_000u64).map(|k| id(chunks + k)).collect();
    let t = Instant::now();
    let hits = probes.iter().filter(|p| index.contains(p)).count();
    let hit_ns = t.elapsed().as_nanos() as f64 / probes.len() as f64;
    let t = Instant::now();
    let false_hits = misses.iter().filter(|p| index.contains(p)).count();
    let miss_ns = t.elapsed().as_nanos() as f64 / misses.len() as f64;
    println!("chunks: {chunks}, packs: {}", index.packs().len());
    println!(
        "index memory: {:.1} MB ({:.1} bytes per chunk)",
        index.memory_bytes() as f64 / 1e6,
        index.memory_bytes() as f64 / chunks as f64
    );
    println!("peak RSS of this process: {:.1} MB (includes the 1M-id probe lists, 64 MB)", peak_rss_mb());
    println!(
        "build: {:.2} s; lookups: {hit_ns:.0} ns per hit ({hits} hits), {miss_ns:.0} ns per miss ({false_hits} false)",
        built.as_secs_f64()
    );
}

//! Per-stage throughput: chunking, hashing, the compression probe, compression, sealing,
//! pack-blob encoding and index lookups. `cargo bench --bench stages`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use snap::chunker::Chunker;
use snap::compress;
use snap::crypto::{Keys, MasterKey, aad};
use snap::format::index::PackContents;
use snap::format::pack::{BlobEntry, BlobKind};
use snap::id::Id;
use snap::index::Index;

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(b"bench").finalize_xof().fill(&mut out);
    out
}

fn xml(len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 200);
    let mut i = 0u64;
    while s.len() < len {
        s.push_str(&format!(
            "  <call number=\"+49151{:07}\" duration=\"{}\" date=\"{}\" type=\"1\" />\n",
            i * 7919 % 9_999_999,
            i % 3600,
            1_700_000_000_000 + i * 3_600_000
        ));
        i += 1;
    }
    s.into_bytes()
}

fn stages(c: &mut Criterion) {
    let keys = Keys::encrypted(&MasterKey::from_bytes([7; 32]));
    let media = pseudo_random(16 << 20);
    let text = xml(16 << 20);
    let chunk = &media[..1 << 20];
    let text_chunk = &text[..1 << 20];

    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(media.len() as u64));
    let chunker = Chunker::new(keys.gear());
    g.bench_function("media 16 MiB", |b| b.iter(|| chunker.chunk_lengths(black_box(&media))));
    g.bench_function("xml 16 MiB", |b| b.iter(|| chunker.chunk_lengths(black_box(&text))));
    g.finish();

    let mut g = c.benchmark_group("per 1 MiB chunk");
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("keyed blake3 id", |b| b.iter(|| keys.blob_id(black_box(chunk))));
    g.bench_function("compression probe (media)", |b| b.iter(|| compress::probe(black_box(chunk))));
    for level in [1, 3] {
        g.bench_with_input(BenchmarkId::new("zstd xml", level), &level, |b, &l| {
            b.iter(|| compress::maybe_compress(black_box(text_chunk), l))
        });
    }
    g.bench_function("seal (xchacha20poly1305)", |b| {
        b.iter(|| keys.seal_with_nonce(aad::INDEX, &[1; 24], black_box(chunk)))
    });
    g.finish();

    let n = 1_000_000u32;
    let blobs: Vec<BlobEntry> = (0..n)
        .map(|i| BlobEntry {
            kind: BlobKind::Data,
            compressed: false,
            id: Id::of_bytes(&i.to_le_bytes()),
            offset: i,
            stored_len: 1,
            raw_len: 1,
        })
        .collect();
    let probes: Vec<Id> = blobs.iter().step_by(997).map(|b| b.id).collect();
    let index = Index::build(vec![PackContents { pack: Id([1; 32]), blobs }]);
    let mut g = c.benchmark_group("index 1M entries");
    g.throughput(Throughput::Elements(probes.len() as u64));
    g.bench_function("lookup hits", |b| b.iter(|| probes.iter().filter(|id| index.contains(id)).count()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = stages
}
criterion_main!(benches);

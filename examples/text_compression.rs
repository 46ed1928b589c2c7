//! Does chunk-wise compression of call-log and SMS exports match zstd -3 of the whole file?
//! `cargo run --release --example text_compression`

#[path = "../tests/common/phone.rs"]
mod phone;

use snap::chunker::Chunker;
use snap::crypto::{Keys, MasterKey};

fn main() {
    let keys = Keys::encrypted(&MasterKey::from_bytes([7; 32]));
    let chunker = Chunker::new(keys.gear());
    println!("| export | bytes | zstd -3 whole file | chunk-wise level 3 | level 6 | level 9 | level 12 | level 19 |");
    println!("|---|---|---|---|---|---|---|---|");
    for (kind, records) in [("call", 40_000), ("sms", 30_000)] {
        let data = phone::export(kind, records);
        let whole = zstd::bulk::compress(&data, 3).map(|z| z.len()).unwrap_or(0);
        let lengths = chunker.chunk_lengths(&data);
        let mut row = format!("| {kind} ({records} records) | {} | {whole} |", data.len());
        for level in [3, 6, 9, 12, 19] {
            let mut pos = 0;
            let mut total = 0;
            let start = std::time::Instant::now();
            for &l in &lengths {
                total += zstd::bulk::compress(&data[pos..pos + l], level).map(|z| z.len()).unwrap_or(l);
                pos += l;
            }
            let mbs = data.len() as f64 / 1e6 / start.elapsed().as_secs_f64();
            row.push_str(&format!(" {total} ({:.2}x of zstd -3, {mbs:.0} MB/s) |", total as f64 / whole as f64));
        }
        println!("{row}");
    }
}

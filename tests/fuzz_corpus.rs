//! Replays the committed fuzz corpus through every decoder as a plain test, together with
//! deterministic truncations and bit flips of each input, so CI catches a decoder that panics
//! without needing a fuzzer.

use std::fs;
use std::path::Path;

use snap::fuzz_targets::TARGETS;

fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec(), Vec::new()];
    let step = (seed.len() / 64).max(1);
    for cut in (0..seed.len()).step_by(step) {
        out.push(seed[..cut].to_vec());
    }
    for pos in (0..seed.len()).step_by(step) {
        for bit in [0x01u8, 0x80] {
            let mut m = seed.to_vec();
            m[pos] ^= bit;
            out.push(m);
        }
        let mut m = seed.to_vec();
        m[pos] = 0xFF;
        out.push(m);
    }
    out
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let entries: Vec<_> = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).collect();
        assert!(!entries.is_empty(), "no corpus for fuzz target {name}");
        for entry in entries {
            let path = entry.expect("entry").path();
            let seed = fs::read(&path).expect("read corpus file");
            for input in mutations(&seed) {
                target(&input);
            }
        }
    }
}

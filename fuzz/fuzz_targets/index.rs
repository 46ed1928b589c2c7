#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| snap::fuzz_targets::index(data));

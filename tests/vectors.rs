//! Test vectors for format-spec/: generated from the code, committed, and compared on every run,
//! so an accidental change to any byte the format defines fails here.
//! Regenerate deliberately with `SNAP_UPDATE_VECTORS=1 cargo test --test vectors`.

use serde_json::{Value, json};
use snap::chunker::{Chunker, region_starts};
use snap::crypto::keyfile::{Credential, KdfParams, KeyFile};
use snap::crypto::{Keys, MasterKey, aad, blob_aad};
use snap::format::index::{self, PackContents};
use snap::format::pack::{self, BlobEntry, BlobKind};
use snap::format::snapshot::{Skipped, Snapshot, Summary};
use snap::format::tree::{self, FileContent, Node, NodeContent, Timestamp};
use snap::format::{unwrap_payload, wire};
use snap::id::Id;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/format-spec/vectors");

fn master() -> MasterKey {
    let mut m = [0u8; 32];
    for (i, b) in m.iter_mut().enumerate() {
        *b = i as u8;
    }
    MasterKey::from_bytes(m)
}

/// `n` bytes of BLAKE3's extendable output for `label`: inputs anyone can regenerate.
fn xof(label: &str, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    blake3::Hasher::new().update(label.as_bytes()).finalize_xof().fill(&mut out);
    out
}

/// A text input: an XML header, then `<r i="N"/>` lines.
fn text_input() -> Vec<u8> {
    let mut s = String::from("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<calls count=\"30000\">\n");
    for i in 0..30000 {
        s.push_str(&format!("  <r i=\"{i}\" d=\"{}\"/>\n", i * 7919 % 100_000));
    }
    s.push_str("</calls>\n");
    s.into_bytes()
}

fn sample_tree() -> Vec<Node> {
    vec![
        Node {
            name: b"IMG_0001.jpg".to_vec(),
            mode: 0o644,
            mtime: Timestamp { secs: 1_709_251_200, nanos: 123_456_789 },
            uid: 1000,
            gid: 1000,
            content: NodeContent::File(FileContent {
                size: 11,
                inode: 42,
                ctime: Timestamp { secs: 1_709_251_201, nanos: 5 },
                fingerprint: [0xAB; 32],
                chunks: vec![Keys::encrypted(&master()).blob_id(b"hello world")],
            }),
        },
        Node {
            name: b"Sent".to_vec(),
            mode: 0o755,
            mtime: Timestamp { secs: -1, nanos: 0 },
            uid: 0,
            gid: 0,
            content: NodeContent::Dir { subtree: Id([0x77; 32]) },
        },
        Node {
            name: b"link".to_vec(),
            mode: 0o777,
            mtime: Timestamp { secs: 0, nanos: 999_999_999 },
            uid: 1,
            gid: 2,
            content: NodeContent::Symlink { target: b"../DCIM".to_vec() },
        },
    ]
}

fn build() -> Value {
    let keys = Keys::encrypted(&master());
    let plain = Keys::unencrypted();
    let gear_bytes: Vec<u8> = keys.gear().iter().flat_map(|w| w.to_le_bytes()).collect();
    let plain_gear_bytes: Vec<u8> = plain.gear().iter().flat_map(|w| w.to_le_bytes()).collect();

    let bulk = xof("snap chunker vector", 6 << 20);
    let text = text_input();
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10];
    jpeg.extend(xof("exif", 14));
    jpeg.extend([0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02, 0xFF, 0xDA, 0x00, 0x02]);
    jpeg.extend(xof("scan", 3 << 20));

    let fp_input = xof("fingerprint input", 200_000);
    let fp = {
        let mut h = keys.fingerprint_hasher();
        h.update(&(fp_input.len() as u64).to_le_bytes());
        h.update(&fp_input[..65536]);
        h.update(&fp_input[fp_input.len() - 65536..]);
        hex::encode(h.finalize().as_bytes())
    };

    let tree_bytes = tree::encode(&sample_tree());
    let data = b"hello world".to_vec();
    let data_id = keys.blob_id(&data);
    let tree_id = keys.blob_id(&tree_bytes);
    let sealed_data = keys.seal_with_nonce(&blob_aad(0, &data_id), &[1; 24], &data);
    let sealed_tree = keys.seal_with_nonce(&blob_aad(1, &tree_id), &[2; 24], &tree_bytes);
    let entries = vec![
        BlobEntry {
            kind: BlobKind::Data,
            compressed: false,
            id: data_id,
            offset: 0,
            stored_len: sealed_data.len() as u32,
            raw_len: data.len() as u32,
        },
        BlobEntry {
            kind: BlobKind::Tree,
            compressed: false,
            id: tree_id,
            offset: sealed_data.len() as u32,
            stored_len: sealed_tree.len() as u32,
            raw_len: tree_bytes.len() as u32,
        },
    ];
    let header = pack::encode_header(&entries);
    let sealed_header = keys.seal_with_nonce(aad::PACK_HEADER, &[3; 24], &header);
    let mut pack_bytes = [sealed_data, sealed_tree, sealed_header.clone()].concat();
    pack_bytes.extend(pack::encode_trailer(sealed_header.len() as u32));
    let pack_id = Id::of_bytes(&pack_bytes);

    let index_body = index::encode(&[PackContents { pack: pack_id, blobs: entries }]);
    let index_envelope = [&[1u8, 0][..], &index_body].concat();
    let index_file = keys.seal_with_nonce(aad::INDEX, &[4; 24], &index_envelope);

    let snapshot = Snapshot {
        time: "2026-01-02T03:04:05.000000006Z".into(),
        hostname: "pixel-8".into(),
        username: "ana".into(),
        paths: vec!["/home/ana/phone".into()],
        tags: vec!["weekly".into()],
        tree: tree_id,
        parent: None,
        program: "snap 0.1.0".into(),
        summary: Summary { files_new: 1, total_files: 1, total_bytes: 11, ..Default::default() },
        skipped: vec![Skipped { path: "/home/ana/phone/locked".into(), error: "Permission denied".into() }],
    };
    let snapshot_body = snapshot.encode_json();
    let snapshot_envelope = [&[1u8, 0][..], &snapshot_body].concat();
    let snapshot_file = keys.seal_with_nonce(aad::SNAPSHOT, &[5; 24], &snapshot_envelope);

    let key_file = KeyFile::create_with(
        &Credential::password("password"),
        &master(),
        &Id([0x11; 32]),
        KdfParams { memory_kib: 256, iterations: 1, parallelism: 1 },
        [0x5A; 16],
        [0x6B; 24],
        "2026-01-01T00:00:00Z".into(),
        "host".into(),
        "user".into(),
    )
    .expect("key file");

    let mut varints = Vec::new();
    for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
        let mut out = Vec::new();
        wire::put_varint(&mut out, v);
        varints.push(json!({"value": v.to_string(), "hex": hex::encode(out)}));
    }
    let mut svarints = Vec::new();
    for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
        let mut out = Vec::new();
        wire::put_signed(&mut out, v);
        svarints.push(json!({"value": v.to_string(), "hex": hex::encode(out)}));
    }

    json!({
        "about": "snap format version 1 test vectors; see format-spec/*.md. master secret = bytes 0x00..0x1f. xof(label, n) = first n bytes of BLAKE3 XOF of the ASCII label.",
        "varint": varints,
        "svarint": svarints,
        "keys": {
            "master": hex::encode(master().as_bytes()),
            "blob_id_hello_world_keyed": data_id.to_hex(),
            "blob_id_hello_world_unencrypted": plain.blob_id(b"hello world").to_hex(),
            "gear_first_words": keys.gear()[..4].iter().map(|w| format!("{w:#018x}")).collect::<Vec<_>>(),
            "gear_table_blake3": hex::encode(blake3::hash(&gear_bytes).as_bytes()),
            "unencrypted_gear_table_blake3": hex::encode(blake3::hash(&plain_gear_bytes).as_bytes()),
            "seal": {
                "aad": "snap1/index", "nonce": hex::encode([0x24u8; 24]), "plaintext": hex::encode(b"snap test vector"),
                "sealed": hex::encode(keys.seal_with_nonce(aad::INDEX, &[0x24; 24], b"snap test vector")),
            },
        },
        "key_file": {"password": "password", "repository": Id([0x11; 32]).to_hex(), "json": String::from_utf8(key_file.encode()).unwrap_or_default()},
        "chunking": {
            "bulk_input": "xof(\"snap chunker vector\", 6291456)",
            "bulk_lengths_unencrypted": Chunker::new(plain.gear()).chunk_lengths(&bulk),
            "bulk_lengths_keyed": Chunker::new(keys.gear()).chunk_lengths(&bulk),
            "text_input": "an XML header line, then 30000 lines `  <r i=\"{i}\" d=\"{i*7919 % 100000}\"/>\\n`, then `</calls>\\n` (see tests/vectors.rs)",
            "text_region_starts": region_starts(&text),
            "text_lengths_keyed": Chunker::new(keys.gear()).chunk_lengths(&text),
            "jpeg_input": "FF D8 FF E1 00 10 || xof(\"exif\", 14) || FF DB 00 04 01 02 FF DA 00 02 || xof(\"scan\", 3145728)",
            "jpeg_region_starts": region_starts(&jpeg),
            "jpeg_lengths_keyed": Chunker::new(keys.gear()).chunk_lengths(&jpeg),
        },
        "fingerprint": {"input": "xof(\"fingerprint input\", 200000)", "keyed": fp},
        "tree": {"hex": hex::encode(&tree_bytes), "id_keyed": tree_id.to_hex()},
        "pack": {
            "blob_nonces": [hex::encode([1u8; 24]), hex::encode([2u8; 24])],
            "header_nonce": hex::encode([3u8; 24]),
            "header_plain": hex::encode(&header),
            "hex": hex::encode(&pack_bytes),
            "id": pack_id.to_hex(),
        },
        "index_file": {"body": hex::encode(&index_body), "nonce": hex::encode([4u8; 24]), "hex": hex::encode(&index_file), "name": Id::of_bytes(&index_file).to_hex()},
        "snapshot_file": {"body": String::from_utf8_lossy(&snapshot_body), "nonce": hex::encode([5u8; 24]), "hex": hex::encode(&snapshot_file)},
    })
}

/// One failure per vector, each with the error text it must produce.
fn negative() -> Value {
    let keys = Keys::encrypted(&master());
    let good_tree = tree::encode(&sample_tree());
    let mut bad_type = good_tree.clone();
    bad_type[2 + 1 + 12] = 9; // first node's type byte
    let mut bad_nanos = Vec::new();
    bad_nanos.extend([1u8, 1, 1, b'a', 3, 0, 0]);
    wire::put_varint(&mut bad_nanos, 1_000_000_000);
    let mut huge_count = vec![1u8];
    wire::put_varint(&mut huge_count, 1 << 40);
    let mut sealed = keys.seal_with_nonce(aad::INDEX, &[4; 24], &[1, 0, 0]);
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    json!([
        {"decoder": "pack_trailer", "pack_len": 100, "hex": hex::encode(b"\x10\0\0\0SNPX"), "error": "bad magic"},
        {"decoder": "pack_trailer", "pack_len": 50, "hex": hex::encode(pack::encode_trailer(60)), "error": "exceeds the pack"},
        {"decoder": "pack_header", "hex": hex::encode([2u8, 0]), "error": "unknown pack header version 2"},
        {"decoder": "pack_header", "hex": hex::encode(&huge_count), "error": "exceeds the limit"},
        {"decoder": "tree", "hex": hex::encode(&good_tree[..good_tree.len() - 1]), "error": "needs"},
        {"decoder": "tree", "hex": hex::encode(&bad_type), "error": "unknown node type 9"},
        {"decoder": "tree", "hex": hex::encode(&bad_nanos), "error": "mtime"},
        {"decoder": "varint", "hex": "ffffffffffffffffff02", "error": "overflows 64 bits"},
        {"decoder": "index", "hex": hex::encode([0xFFu8, 0xFF, 0x03]), "error": "exceeds the limit"},
        {"decoder": "envelope", "hex": hex::encode([2u8, 0]), "error": "newer than this snap understands"},
        {"decoder": "envelope", "hex": hex::encode([1u8, 7]), "error": "unknown compression 7"},
        {"decoder": "sealed_index", "hex": hex::encode(&sealed), "error": "failed authentication"},
    ])
}

fn run_negative(v: &Value) -> String {
    let bytes = hex::decode(v["hex"].as_str().unwrap_or_default()).expect("hex");
    let keys = Keys::encrypted(&master());
    let name = || "vector".to_string();
    match v["decoder"].as_str().unwrap_or_default() {
        "pack_trailer" => pack::decode_trailer(&bytes, v["pack_len"].as_u64().unwrap_or(0)).err().map(|e| e.0),
        "pack_header" => pack::decode_header(&bytes).err().map(|e| e.0),
        "tree" => tree::decode(&bytes).err().map(|e| e.0),
        "varint" => wire::Reader::new(&bytes).varint("varint").err().map(|e| e.0),
        "index" => index::decode(&bytes).err().map(|e| e.0),
        "envelope" => unwrap_payload(&bytes, 1, "index file", &name).err().map(|e| e.to_string()),
        "sealed_index" => keys.open(aad::INDEX, &bytes, "index file", &name).err().map(|e| e.to_string()),
        other => Some(format!("unknown decoder {other}")),
    }
    .unwrap_or_else(|| "decoded without error".into())
}

fn compare_or_update(file: &str, value: &Value) {
    let path = format!("{DIR}/{file}");
    let text = serde_json::to_string_pretty(value).expect("json") + "\n";
    if std::env::var_os("SNAP_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vectors");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        committed == text,
        "{file} drifted from the code: the on-disk format changed. If deliberate, update format-spec and regenerate with SNAP_UPDATE_VECTORS=1"
    );
}

#[test]
fn positive_vectors_match_the_code() {
    compare_or_update("vectors.json", &build());
}

#[test]
fn committed_vectors_decode_back() {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/vectors.json")).expect("read")).expect("json");
    let keys = Keys::encrypted(&master());
    let pack_bytes = hex::decode(v["pack"]["hex"].as_str().expect("pack")).expect("hex");
    assert_eq!(Id::of_bytes(&pack_bytes).to_hex(), v["pack"]["id"].as_str().expect("id"));
    let trailer = &pack_bytes[pack_bytes.len() - 8..];
    let header_len = pack::decode_trailer(trailer, pack_bytes.len() as u64).expect("trailer") as usize;
    let header_start = pack_bytes.len() - 8 - header_len;
    let header = keys
        .open(aad::PACK_HEADER, &pack_bytes[header_start..pack_bytes.len() - 8], "pack", &|| "v".into())
        .expect("open header");
    let entries = pack::decode_header(&header).expect("header");
    let tree_entry = entries[1];
    let stored = &pack_bytes[tree_entry.offset as usize..(tree_entry.offset + tree_entry.stored_len) as usize];
    let tree_plain = keys.open(&blob_aad(1, &tree_entry.id), stored, "tree", &|| "v".into()).expect("open tree");
    assert_eq!(tree::decode(&tree_plain).expect("tree"), sample_tree());
    let kf = KeyFile::decode(v["key_file"]["json"].as_str().expect("key").as_bytes(), "v").expect("key file");
    let unwrapped = kf
        .unwrap_master(&Credential::password("password"), &Id([0x11; 32]), "v")
        .expect("unwrap")
        .expect("password fits");
    assert_eq!(unwrapped.as_bytes(), master().as_bytes());
}

#[test]
fn negative_vectors_fail_with_their_error() {
    let value = negative();
    compare_or_update("negative.json", &value);
    for v in value.as_array().expect("array") {
        let got = run_negative(v);
        let want = v["error"].as_str().unwrap_or_default();
        assert!(got.contains(want), "{}: expected {want:?}, got {got:?}", v["decoder"]);
    }
}

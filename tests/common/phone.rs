//! A deterministic generator of phone-like folders: what `adb pull -a /sdcard` produces.
//!
//! Camera JPEGs with an EXIF header (and thumbnail) before the scan data, videos in ISO-BMFF
//! boxes, PNG screenshots, WhatsApp images with exact duplicates under `Sent/`, a WhatsApp
//! `msgstore-*.crypt14` database per day (random: never deduplicates), and call-log and SMS XML
//! exports per day, each a near copy of the previous one plus new records. Every byte follows
//! from the seed, so two runs produce identical trees.
//!
//! Shared by the integration tests, the demo and the benchmarks (included with `#[path]`).

#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Sizes and counts of one generated phone.
#[derive(Debug, Clone, Copy)]
pub struct PhoneSpec {
    pub photos: usize,
    pub photo_kib: (usize, usize),
    pub videos: usize,
    pub video_kib: usize,
    pub wa_images: usize,
    pub wa_kib: (usize, usize),
    pub screenshots: usize,
    pub screenshot_kib: usize,
    pub db_kib: usize,
    pub call_records: usize,
    pub sms_records: usize,
    /// Records each daily export adds.
    pub records_per_day: usize,
    /// Photos each day adds.
    pub photos_per_day: usize,
}

impl PhoneSpec {
    /// About 12 MB: quick enough for every test.
    pub fn small() -> PhoneSpec {
        PhoneSpec {
            photos: 8,
            photo_kib: (300, 900),
            videos: 1,
            video_kib: 2500,
            wa_images: 12,
            wa_kib: (60, 200),
            screenshots: 3,
            screenshot_kib: 150,
            db_kib: 400,
            call_records: 3000,
            sms_records: 2000,
            records_per_day: 40,
            photos_per_day: 2,
        }
    }

    /// About 1.1 GB: the size the measurements ask for.
    pub fn gigabyte() -> PhoneSpec {
        PhoneSpec {
            photos: 160,
            photo_kib: (2048, 6144),
            videos: 2,
            video_kib: 150 * 1024,
            wa_images: 400,
            wa_kib: (100, 300),
            screenshots: 40,
            screenshot_kib: 600,
            db_kib: 20 * 1024,
            call_records: 40_000,
            sms_records: 30_000,
            records_per_day: 60,
            photos_per_day: 12,
        }
    }
}

/// xorshift64*: fast, deterministic, good enough to look incompressible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() as usize) % (hi - lo + 1)
    }

    pub fn fill(&mut self, out: &mut Vec<u8>, n: usize) {
        out.reserve(n);
        let mut left = n;
        while left > 0 {
            let v = self.next().to_le_bytes();
            let take = left.min(8);
            out.extend_from_slice(&v[..take]);
            left -= take;
        }
    }
}

/// Base time of the generated gallery: 2024-03-01 00:00:00 UTC.
const EPOCH: i64 = 1_709_251_200;

fn write(path: &Path, bytes: &[u8], mtime: i64) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)?;
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(mtime, 123_456_789))
}

/// The EXIF APP1 segment of a photo: text-like tags plus an incompressible thumbnail.
pub fn exif_segment(seed: u64, rating: Option<u8>) -> Vec<u8> {
    let mut body = b"Exif\0\0MM\0*".to_vec();
    body.extend_from_slice(
        format!("Model=Pixel 8;Make=Google;DateTime=2024:03:{:02} 10:00:00;Seed={seed};", seed % 28 + 1).as_bytes(),
    );
    if let Some(r) = rating {
        body.extend_from_slice(format!("Rating={r};RatingPercent={};", u32::from(r) * 20).as_bytes());
    }
    let mut rng = Rng::new(seed ^ 0xE81F);
    rng.fill(&mut body, 9000); // thumbnail
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&body);
    seg
}

/// A JPEG of about `size` bytes: SOI, EXIF, tables, SOS, scan data, EOI.
pub fn jpeg(seed: u64, size: usize, rating: Option<u8>) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    out.extend(exif_segment(seed, rating));
    out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    out.extend((0..64u8).map(|i| i / 4 + 1));
    out.extend_from_slice(&[
        0xFF, 0xC0, 0x00, 0x11, 0x08, 0x0C, 0x00, 0x10, 0x00, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
    ]);
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x0C, 0x03, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3F, 0]);
    let mut rng = Rng::new(seed);
    let scan_len = size.saturating_sub(out.len() + 2);
    rng.fill(&mut out, scan_len);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// An MP4: ftyp, moov, mdat.
pub fn mp4(seed: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&24u32.to_be_bytes());
    out.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2mp41");
    let moov_len = 4096u32;
    out.extend_from_slice(&moov_len.to_be_bytes());
    out.extend_from_slice(b"moov");
    out.extend(std::iter::repeat_n(0x11u8, moov_len as usize - 8));
    let mdat_len = size.saturating_sub(out.len()).max(8);
    out.extend_from_slice(&(mdat_len as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    Rng::new(seed).fill(&mut out, mdat_len - 8);
    out
}

pub fn png(seed: u64, size: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x04\x38\0\0\x09\x60\x08\x06\0\0\0\0\0\0\0".to_vec();
    out.extend_from_slice(&((size - 57) as u32).to_be_bytes());
    out.extend_from_slice(b"IDAT");
    Rng::new(seed).fill(&mut out, size - 57);
    out.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    out
}

fn call_record(i: usize) -> String {
    let mut r = Rng::new(i as u64 ^ 0xCA11);
    format!(
        "  <call number=\"+49151{:07}\" duration=\"{}\" date=\"{}\" type=\"{}\" presentation=\"1\" subscription_id=\"1\" readable_date=\"{}\" contact_name=\"Contact {}\" />\n",
        r.next() % 10_000_000,
        r.next() % 3600,
        1_700_000_000_000u64 + i as u64 * 3_600_000,
        r.next() % 3 + 1,
        i,
        r.next() % 300
    )
}

fn sms_record(i: usize) -> String {
    let mut r = Rng::new(i as u64 ^ 0x5335);
    let words = ["ok", "see you", "on my way", "thanks!", "call me", "dinner at 8?", "running late", "happy birthday"];
    format!(
        "  <sms protocol=\"0\" address=\"+49151{:07}\" date=\"{}\" type=\"{}\" body=\"{} {}\" read=\"1\" status=\"-1\" locked=\"0\" />\n",
        r.next() % 10_000_000,
        1_700_000_000_000u64 + i as u64 * 600_000,
        r.next() % 2 + 1,
        words[(r.next() % 8) as usize],
        words[(r.next() % 8) as usize]
    )
}

/// A backup app's export: a header with the count, then every record so far.
pub fn export(kind: &str, records: usize) -> Vec<u8> {
    let mut out = format!(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<{kind}es count=\"{records}\" backup_set=\"x\">\n"
    )
    .into_bytes();
    for i in 0..records {
        out.extend_from_slice(if kind == "call" { call_record(i) } else { sms_record(i) }.as_bytes());
    }
    out.extend_from_slice(format!("</{kind}es>\n").as_bytes());
    out
}

pub const CAMERA: &str = "DCIM/Camera";
pub const ALBUM: &str = "DCIM/Camera/Trip";
pub const MOVED_ALBUM: &str = "Pictures/Trip";
pub const WA: &str = "Android/media/com.whatsapp/WhatsApp";

fn photo_name(i: usize) -> String {
    format!("PXL_2024{:02}{:02}_{:06}.jpg", i % 12 + 1, i % 28 + 1, 100_000 + i)
}

/// Writes day 0 of a phone into `root`. Returns the bytes written.
pub fn generate(root: &Path, spec: &PhoneSpec) -> io::Result<u64> {
    let mut written = 0u64;
    let mut rng = Rng::new(42);
    for i in 0..spec.photos {
        let size = rng.range(spec.photo_kib.0, spec.photo_kib.1) * 1024;
        // The first quarter of the photos form an album that a later day moves.
        let dir = if i < spec.photos / 4 { ALBUM } else { CAMERA };
        let bytes = jpeg(i as u64, size, None);
        write(&root.join(dir).join(photo_name(i)), &bytes, EPOCH + i as i64 * 3600)?;
        written += bytes.len() as u64;
    }
    for i in 0..spec.videos {
        let bytes = mp4(1000 + i as u64, spec.video_kib * 1024);
        write(&root.join(CAMERA).join(format!("PXL_2024_VID_{i:03}.mp4")), &bytes, EPOCH + 7200 * i as i64)?;
        written += bytes.len() as u64;
    }
    for i in 0..spec.screenshots {
        let bytes = png(2000 + i as u64, spec.screenshot_kib * 1024);
        write(&root.join(format!("Pictures/Screenshots/Screenshot_2024{i:04}.png")), &bytes, EPOCH + 500 * i as i64)?;
        written += bytes.len() as u64;
    }
    for i in 0..spec.wa_images {
        let size = rng.range(spec.wa_kib.0, spec.wa_kib.1) * 1024;
        let bytes = jpeg(3000 + i as u64, size, None);
        let name = format!("IMG-2024{:04}-WA{:04}.jpg", i / 10, i);
        let images = format!("{WA}/Media/WhatsApp Images");
        write(&root.join(&images).join(&name), &bytes, EPOCH + 60 * i as i64)?;
        written += bytes.len() as u64;
        if i % 3 == 0 {
            write(&root.join(&images).join("Sent").join(&name), &bytes, EPOCH + 60 * i as i64)?;
            written += bytes.len() as u64;
        }
    }
    written += add_day_files(root, spec, 0)?;
    Ok(written)
}

/// The files a day adds that are not photos: a WhatsApp database and two exports.
fn add_day_files(root: &Path, spec: &PhoneSpec, day: usize) -> io::Result<u64> {
    let mut db = Vec::new();
    Rng::new(5000 + day as u64).fill(&mut db, spec.db_kib * 1024);
    let t = EPOCH + 86_400 * (30 + day as i64);
    write(&root.join(format!("{WA}/Databases/msgstore-2024-04-{:02}.1.db.crypt14", day + 1)), &db, t)?;
    let calls = export("call", spec.call_records + day * spec.records_per_day);
    let sms = export("sms", spec.sms_records + day * spec.records_per_day);
    write(&root.join(format!("Backups/calls-202404{:02}.xml", day + 1)), &calls, t)?;
    write(&root.join(format!("Backups/sms-202404{:02}.xml", day + 1)), &sms, t)?;
    Ok((db.len() + calls.len() + sms.len()) as u64)
}

/// What a day of phone use changed, in bytes of genuinely new content.
#[derive(Debug, Default, Clone, Copy)]
pub struct DayChange {
    pub new_photo_bytes: u64,
    pub new_db_bytes: u64,
    pub new_export_records: u64,
    pub export_bytes: u64,
    pub edited_photos: u64,
}

/// Applies day `day` (>= 1): new photos, one deleted, two EXIF edits, the album moved (day 1
/// only), a new database and new exports.
pub fn grow(root: &Path, spec: &PhoneSpec, day: usize) -> io::Result<DayChange> {
    let mut change = DayChange::default();
    let mut rng = Rng::new(7000 + day as u64);
    let first_new = spec.photos + (day - 1) * spec.photos_per_day;
    for i in first_new..first_new + spec.photos_per_day {
        let size = rng.range(spec.photo_kib.0, spec.photo_kib.1) * 1024;
        let bytes = jpeg(i as u64, size, None);
        write(&root.join(CAMERA).join(photo_name(i)), &bytes, EPOCH + i as i64 * 3600)?;
        change.new_photo_bytes += bytes.len() as u64;
    }
    // Delete one old photo, edit the EXIF of two others (the scan data stays the same).
    let camera_photos: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = fs::read_dir(root.join(CAMERA))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect();
        v.sort();
        v
    };
    if let Some(victim) = camera_photos.first() {
        fs::remove_file(victim)?;
    }
    for path in camera_photos.iter().skip(1).take(2) {
        let old = fs::read(path)?;
        let seg_len = 4 + u16::from_be_bytes([old[4], old[5]]) as usize - 2;
        let seed = String::from_utf8_lossy(&old[..seg_len])
            .split("Seed=")
            .nth(1)
            .and_then(|s| s.split(';').next()?.parse().ok())
            .unwrap_or(0);
        let mut edited = old[..2].to_vec();
        edited.extend(exif_segment(seed, Some((day % 5 + 1) as u8)));
        edited.extend_from_slice(&old[2 + seg_len..]);
        write(path, &edited, EPOCH + 86_400 * (60 + day as i64))?;
        change.edited_photos += 1;
    }
    if day == 1 && root.join(ALBUM).exists() {
        fs::create_dir_all(root.join(MOVED_ALBUM).parent().unwrap_or(root))?;
        fs::rename(root.join(ALBUM), root.join(MOVED_ALBUM))?;
    }
    let before = spec.call_records + spec.sms_records + 2 * (day - 1) * spec.records_per_day;
    change.export_bytes = add_day_files(root, spec, day)?;
    change.new_db_bytes = (spec.db_kib * 1024) as u64;
    change.new_export_records = (spec.call_records + spec.sms_records + 2 * day * spec.records_per_day - before) as u64;
    Ok(change)
}

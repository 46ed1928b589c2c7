//! Writes a generated phone folder, or applies a day of growth to one:
//!
//! ```text
//! cargo run --release --example phone_folder -- generate DIR [small|gigabyte]
//! cargo run --release --example phone_folder -- grow DIR DAY [small|gigabyte]
//! ```

#[path = "../tests/common/phone.rs"]
mod phone;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec_of = |name: Option<&String>| match name.map(String::as_str) {
        None | Some("small") => Some(phone::PhoneSpec::small()),
        Some("gigabyte") => Some(phone::PhoneSpec::gigabyte()),
        _ => None,
    };
    let result = match args.as_slice() {
        [cmd, dir, rest @ ..] if cmd == "generate" => match spec_of(rest.first()) {
            Some(spec) => phone::generate(&PathBuf::from(dir), &spec).map(|bytes| println!("wrote {bytes} bytes to {dir}")),
            None => return usage(),
        },
        [cmd, dir, day, rest @ ..] if cmd == "grow" => match (spec_of(rest.first()), day.parse::<usize>()) {
            (Some(spec), Ok(day)) if day >= 1 => phone::grow(&PathBuf::from(dir), &spec, day).map(|c| {
                println!(
                    "day {day}: {} bytes of new photos, {} bytes new database, {} new export records ({} bytes of exports), {} EXIF edits",
                    c.new_photo_bytes, c.new_db_bytes, c.new_export_records, c.export_bytes, c.edited_photos
                )
            }),
            _ => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("phone_folder: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: phone_folder generate DIR [small|gigabyte] | phone_folder grow DIR DAY [small|gigabyte]");
    ExitCode::from(2)
}

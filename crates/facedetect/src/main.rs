//! `facedetect CASCADE IMAGE`: finds faces in a PNG photo.
//!
//! CASCADE is a cascade in the compact form (`cargo xtask build` converts OpenCV's XML);
//! the detector is specified in the `haar-cascade` crate. Prints one `face x= y= w= h=` line
//! per face. Checksum: FNV-1a 64 over `x y w h\n` per face, faces sorted by (x, y, w, h).

use facedetect::read_png;
use haar_cascade::Cascade;
use protocol::Fnv1a64;
use std::process::exit;

fn main() {
    protocol::print_start("facedetect");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cascade_path, image_path] = &args[..] else {
        fail(2, "usage: facedetect CASCADE IMAGE");
    };
    let cascade_text = std::fs::read_to_string(cascade_path)
        .unwrap_or_else(|e| fail(1, &format!("cannot read {cascade_path}: {e}")));
    let cascade = Cascade::from_compact(&cascade_text)
        .unwrap_or_else(|e| fail(1, &format!("{cascade_path}: {e}")));
    let image = read_png(image_path).unwrap_or_else(|e| fail(1, &format!("{image_path}: {e}")));

    let faces = haar_cascade::detect(&cascade, &image);
    for f in &faces {
        println!("face x={} y={} w={} h={}", f.x, f.y, f.w, f.h);
    }
    println!("faces={}", faces.len());
    let mut hash = Fnv1a64::new();
    hash.update(haar_cascade::faces_text(&faces).as_bytes());
    protocol::print_end(hash.finish());
}

fn fail(code: i32, msg: &str) -> ! {
    eprintln!("facedetect: {msg}");
    exit(code)
}

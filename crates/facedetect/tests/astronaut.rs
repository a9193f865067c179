//! The detector on the study's photo, with OpenCV's trained cascade, in-process.

use haar_cascade::{Cascade, Rect, opencv_xml};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

#[test]
fn finds_the_astronauts_face() {
    let xml = std::fs::read_to_string(data("haarcascade_frontalface_default.xml")).unwrap();
    let cascade = opencv_xml::parse(&xml).unwrap();
    assert_eq!(
        (
            cascade.width,
            cascade.height,
            cascade.stages.len(),
            cascade.features.len()
        ),
        (24, 24, 25, 2913)
    );
    // The compact form the workloads read is the same cascade.
    assert_eq!(
        Cascade::from_compact(&cascade.to_compact()).unwrap(),
        cascade
    );

    let image = facedetect::read_png(data("astronaut.png").to_str().unwrap()).unwrap();
    let faces = haar_cascade::detect(&cascade, &image);
    eprintln!("{faces:?}");
    assert!(
        faces.iter().any(is_the_face),
        "no face at the astronaut's face: {faces:?}"
    );
}

/// Eileen Collins' face in astronaut.png lies within x 160..260, y 40..140 (checked by eye).
fn is_the_face(f: &Rect) -> bool {
    let (cx, cy) = (f.x + f.w / 2, f.y + f.h / 2);
    (160..260).contains(&cx) && (40..140).contains(&cy) && (50..140).contains(&f.w)
}

//! PNG decoding for the facedetect workload.

use haar_cascade::GrayImage;

/// Decodes any 8- or 16-bit PNG to gray through RGB, as stb_image does for the C++ workload.
pub fn read_png(path: &str) -> Result<GrayImage, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let rgb: Vec<u8> = buf[..w * h * channels]
        .chunks_exact(channels)
        .flat_map(|p| match p.len() {
            1 | 2 => [p[0], p[0], p[0]],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    Ok(GrayImage::from_rgb8(w, h, &rgb))
}

//! A small PDF written by hand: one 16:9 page per title, each with the title in Helvetica on a
//! coloured band. For tests, and for trying `/slides` without a PDF of one's own.

/// The colour of page `index`'s band (red, green, blue, then again), as 0–255 RGB.
pub fn band_colour(index: usize) -> [u8; 3] {
    [[200, 30, 30], [30, 160, 60], [30, 60, 200]][index % 3]
}

/// A PDF of one 960×540-point page per title. Each page has a band across its lower half in
/// [`band_colour`] (from y = 0 to 270 points) and its title above.
pub fn sample_pdf(titles: &[&str]) -> Vec<u8> {
    let contents: Vec<String> = titles
        .iter()
        .enumerate()
        .map(|(index, title)| {
            let [red, green, blue] = band_colour(index).map(|channel| f32::from(channel) / 255.0);
            let escaped: String = title
                .chars()
                .filter(char::is_ascii)
                .flat_map(|c| if matches!(c, '(' | ')' | '\\') { vec!['\\', c] } else { vec![c] })
                .collect();
            format!(
                "{red:.3} {green:.3} {blue:.3} rg 0 0 960 270 re f\n0 0 0 rg BT /F1 64 Tf 60 380 Td ({escaped}) Tj ET\n"
            )
        })
        .collect();
    pdf_of_contents(&contents)
}

/// A PDF of one 960×540-point page per content stream (PDF drawing operators, Helvetica as
/// `/F1`).
pub fn pdf_of_contents(contents: &[String]) -> Vec<u8> {
    let pages = contents.len();
    // Objects: 1 catalog, 2 page tree, 3 font, then a page and its content for each.
    let page_id = |index: usize| 4 + 2 * index;
    let kids: Vec<String> = (0..pages).map(|index| format!("{} 0 R", page_id(index))).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    for (index, content) in contents.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 960 540] /Resources << /Font << /F1 3 0 R >> >> \
             /Contents {} 0 R >>",
            page_id(index) + 1
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{content}endstream", content.len()));
    }
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

//! PDF slides through the real renderer: `sanctuary render-pdf` in a child process, as
//! `/slides TALK.pdf` runs it.

use std::path::PathBuf;
use std::time::Duration;

use sanctuary::pdf_slides::{PdfSlides, draw_and_wait};
use sanctuary_net::Command;

fn slides_in(dir: &std::path::Path) -> PdfSlides {
    PdfSlides::new(Some(PathBuf::from(env!("CARGO_BIN_EXE_sanctuary"))), dir.join("slides"))
}

#[test]
fn a_pdf_becomes_a_deck_of_its_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pdf = dir.path().join("talk.pdf");
    std::fs::write(&pdf, sanctuary_pdf::sample::sample_pdf(&["Welcome", "Method", "Thanks"])).expect("writes");
    let mut slides = slides_in(dir.path());
    let command = draw_and_wait(&mut slides, &pdf, Duration::from_secs(60)).expect("drawn");
    let Command::Present(pages) = command else { panic!("not a presentation: {command:?}") };
    assert_eq!(pages.len(), 3);
    for (index, page) in pages.iter().enumerate() {
        let picture = image::open(page).expect("a picture").to_rgb8();
        assert_eq!(picture.dimensions(), (1920, 1080));
        let band = picture.get_pixel(960, 900).0;
        let wanted = sanctuary_pdf::sample::band_colour(index);
        assert!(band.iter().zip(wanted).all(|(got, want)| got.abs_diff(want) <= 3), "page {index}: {band:?}");
    }
    // The same PDF, shortened, drawn again: its old third page is gone.
    std::fs::write(&pdf, sanctuary_pdf::sample::sample_pdf(&["Only one"])).expect("writes");
    let Command::Present(pages) = draw_and_wait(&mut slides, &pdf, Duration::from_secs(60)).expect("drawn") else {
        panic!("not a presentation")
    };
    assert_eq!(pages.len(), 1);
    let folder = pages[0].parent().expect("a folder");
    assert_eq!(std::fs::read_dir(folder).expect("reads").count(), 1, "no pages left of the longer deck");
}

#[test]
fn a_bad_pdf_is_told_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pdf = dir.path().join("broken.pdf");
    std::fs::write(&pdf, b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n").expect("writes");
    let mut slides = slides_in(dir.path());
    let outcome = draw_and_wait(&mut slides, &pdf, Duration::from_secs(60));
    assert!(outcome.as_ref().is_err_and(|problem| problem.contains("not a PDF that can be read")), "{outcome:?}");
    let written = std::fs::read_dir(dir.path().join("slides"))
        .expect("the decks' folder")
        .flatten()
        .flat_map(|deck| std::fs::read_dir(deck.path()).expect("a deck's folder").flatten())
        .count();
    assert_eq!(written, 0, "no pictures left of a failed PDF");
}

#[test]
fn a_pdf_that_asks_too_much_memory_is_stopped() {
    // 100,000 crossing strokes on one page: hayro needs about 800 MB for them. The renderer is
    // held to 384 MiB here (2 GiB in use, where 2,000,000 strokes are stopped the same way),
    // which is room enough for an ordinary PDF.
    let strokes: String = (0..100_000u32)
        .map(|i| format!("{} {} m {} {} l S\n", i % 960, (i * 7) % 540, (i * 13) % 960, (i * 3) % 540))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let pdf = dir.path().join("heavy.pdf");
    std::fs::write(&pdf, sanctuary_pdf::sample::pdf_of_contents(&[strokes])).expect("writes");
    let mut slides = slides_in(dir.path()).with_memory(384 << 20);
    let plain = dir.path().join("plain.pdf");
    std::fs::write(&plain, sanctuary_pdf::sample::sample_pdf(&["Fits"])).expect("writes");
    draw_and_wait(&mut slides, &plain, Duration::from_secs(60)).expect("an ordinary PDF fits the limit");
    let outcome = draw_and_wait(&mut slides, &pdf, Duration::from_secs(60));
    assert!(outcome.as_ref().is_err_and(|problem| problem.contains("more memory or time")), "{outcome:?}");
    assert!(slides.busy().is_none(), "ready for the next");
}

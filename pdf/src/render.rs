//! Pages drawn to PNG pictures by hayro, within [`Limits`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::{LoadPdfError, Pdf};
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{PixmapSettings, RenderCache, RenderSettings};

use crate::MAX_PDF_BYTES;

/// What a rendering may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many pages (a longer PDF is refused whole, not cut short).
    pub max_pages: usize,
    /// Each page fits a square of this many pixels a side (a 16:9 slide becomes 1920×1080).
    pub side: u32,
    /// Each page's PNG holds at most this many bytes; a bigger one is drawn again smaller.
    pub max_png_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_pages: 200, side: 1920, max_png_bytes: 8 << 20 }
    }
}

/// Why a PDF did not become pictures.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// Over [`MAX_PDF_BYTES`].
    #[error("the PDF is {len} bytes; slides are read from at most {} MiB", MAX_PDF_BYTES >> 20)]
    TooLarge {
        /// Its length.
        len: u64,
    },
    /// Not a PDF hayro can read.
    #[error("not a PDF that can be read (damaged, or not a PDF at all)")]
    Unreadable,
    /// Encrypted with a password.
    #[error("the PDF is encrypted; save it without a password first")]
    Encrypted,
    /// No pages.
    #[error("the PDF has no pages")]
    NoPages,
    /// Too many pages.
    #[error("the PDF has {pages} pages; a deck holds at most {max}")]
    TooManyPages {
        /// How many it has.
        pages: usize,
        /// The limit.
        max: usize,
    },
    /// A page whose size is not a size.
    #[error("page {page} has no usable size ({width}×{height} points)")]
    BadPage {
        /// Counted from 1.
        page: usize,
        /// Its width in points.
        width: f32,
        /// Its height in points.
        height: f32,
    },
    /// A page that stays over the PNG size limit even drawn smaller.
    #[error("page {page} makes a picture of more than {max} bytes")]
    PageTooBig {
        /// Counted from 1.
        page: usize,
        /// The limit.
        max: u64,
    },
    /// The picture could not be encoded or written.
    #[error("page {page}: {why}")]
    Write {
        /// Counted from 1.
        page: usize,
        /// What went wrong.
        why: String,
    },
    /// Reading the file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The file page `index` (from 0) is written to in an output folder: `page-001.png` and on, so
/// that names sort in page order.
pub fn page_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("page-{:03}.png", index + 1))
}

/// Draws every page of `bytes` into `out` (see [`page_file`]), calling `done` after each, and
/// returns how many. Nothing is written unless the whole PDF is within `limits`' page count.
pub fn render_pdf(
    bytes: Vec<u8>,
    limits: Limits,
    out: &Path,
    mut done: impl FnMut(usize, &Path),
) -> Result<usize, PdfError> {
    let len = bytes.len() as u64;
    if len > MAX_PDF_BYTES {
        return Err(PdfError::TooLarge { len });
    }
    let pdf = Pdf::new(bytes).map_err(|error| match error {
        LoadPdfError::Decryption(_) => PdfError::Encrypted,
        LoadPdfError::Invalid => PdfError::Unreadable,
    })?;
    let pages = pdf.pages();
    if pages.is_empty() {
        return Err(PdfError::NoPages);
    }
    if pages.len() > limits.max_pages {
        return Err(PdfError::TooManyPages { pages: pages.len(), max: limits.max_pages });
    }
    let cache = RenderCache::new();
    // The standard 14 fonts are built in; a PDF's embedded fonts are used as they come.
    let settings = InterpreterSettings { warning_sink: Arc::new(|_| {}), ..InterpreterSettings::default() };
    for (index, page) in pages.iter().enumerate() {
        let (width, height) = page.render_dimensions();
        let scale =
            page_scale(width, height, limits.side).ok_or(PdfError::BadPage { page: index + 1, width, height })?;
        let mut png = Vec::new();
        // Drawn at full size, then at three quarters and half while the picture is too big.
        for shrink in [1.0, 0.75, 0.5] {
            let factor = scale * shrink;
            let pixmap = hayro::render(
                page,
                &cache,
                &settings,
                &RenderSettings::default(),
                &PixmapSettings { x_scale: factor, y_scale: factor, bg_color: WHITE },
            );
            png = pixmap.into_png().map_err(|error| PdfError::Write { page: index + 1, why: error.to_string() })?;
            if png.len() as u64 <= limits.max_png_bytes {
                break;
            }
        }
        if png.len() as u64 > limits.max_png_bytes {
            return Err(PdfError::PageTooBig { page: index + 1, max: limits.max_png_bytes });
        }
        let path = page_file(out, index);
        std::fs::write(&path, &png).map_err(|error| PdfError::Write { page: index + 1, why: error.to_string() })?;
        done(index, &path);
    }
    Ok(pages.len())
}

/// The scale that fits a page of `width`×`height` points into a square of `side` pixels, if
/// the page has a size at all (and neither side becomes less than a pixel nor more than
/// `side`).
fn page_scale(width: f32, height: f32, side: u32) -> Option<f32> {
    let valid = |length: f32| length.is_finite() && length > 0.0;
    if !valid(width) || !valid(height) || side == 0 {
        return None;
    }
    let scale = side as f32 / width.max(height);
    // A sliver of a page (1 point by 10,000) would round to nothing.
    (width.min(height) * scale >= 1.0 && scale.is_finite()).then_some(scale)
}

/// `sanctuary render-pdf PDF OUT [--memory-mib N]`: limits this process to `memory` bytes
/// (at most [`crate::CHILD_MEMORY_BYTES`]) and [`crate::CHILD_CPU_SECONDS`] (see
/// [`crate::limit_self`]), draws every page of the PDF at `pdf` into the folder `out` (which
/// it makes), prints `page N` after each and `pages N` at the end. The parent reads those
/// lines ([`crate::render_in_child`]).
pub fn render_command(pdf: &Path, out: &Path, memory: u64) -> Result<usize, String> {
    crate::limit_self(memory.min(crate::CHILD_MEMORY_BYTES), crate::CHILD_CPU_SECONDS)
        .map_err(|error| format!("cannot limit the renderer: {error}"))?;
    let shown = pdf.display();
    let len = std::fs::metadata(pdf).map_err(|error| format!("{shown}: {error}"))?.len();
    if len > MAX_PDF_BYTES {
        return Err(PdfError::TooLarge { len }.to_string());
    }
    let bytes = std::fs::read(pdf).map_err(|error| format!("{shown}: {error}"))?;
    std::fs::create_dir_all(out).map_err(|error| format!("{}: {error}", out.display()))?;
    crate::child::clear_pages(out);
    let pages = render_pdf(bytes, Limits::default(), out, |index, _| println!("page {}", index + 1))
        .map_err(|error| format!("{shown}: {error}"))?;
    println!("pages {pages}");
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_fit_the_square_and_nonsense_sizes_are_refused() {
        let scale = page_scale(960.0, 540.0, 1920).expect("a slide");
        assert!((960.0 * scale - 1920.0).abs() < 0.01 && (540.0 * scale - 1080.0).abs() < 0.01);
        let portrait = page_scale(595.0, 842.0, 1920).expect("A4");
        assert!((842.0 * portrait - 1920.0).abs() < 0.01, "the long side fits");
        assert!(page_scale(14_400.0, 14_400.0, 1920).is_some_and(|scale| scale < 1.0), "a huge page is drawn small");
        for (width, height) in [(0.0, 100.0), (-5.0, 100.0), (f32::NAN, 100.0), (f32::INFINITY, 100.0), (1.0, 1e9)] {
            assert_eq!(page_scale(width, height, 1920), None, "{width}×{height}");
        }
    }

    /// The picture's RGB at (x, y).
    fn pixel(path: &Path, x: u32, y: u32) -> [u8; 3] {
        let picture = image::open(path).expect("a PNG").to_rgb8();
        picture.get_pixel(x, y).0
    }

    #[test]
    fn every_page_becomes_a_picture_of_that_page() {
        let out = tempfile::tempdir().expect("temp dir");
        let titles = ["Welcome", "Why (and how)", "Thanks"];
        let mut told = Vec::new();
        let pages = render_pdf(crate::sample::sample_pdf(&titles), Limits::default(), out.path(), |index, path| {
            told.push((index, path.to_owned()))
        })
        .expect("renders");
        assert_eq!(pages, 3);
        assert_eq!(told.iter().map(|(index, _)| *index).collect::<Vec<_>>(), [0, 1, 2]);
        for (index, path) in &told {
            assert_eq!(*path, page_file(out.path(), *index));
            let picture = image::open(path).expect("a PNG");
            assert_eq!((picture.width(), picture.height()), (1920, 1080), "a 16:9 page fills the square's width");
            // The band (lower half) in the page's colour, the top white, the title in black.
            let band = pixel(path, 960, 900);
            let wanted = crate::sample::band_colour(*index);
            assert!(band.iter().zip(wanted).all(|(got, want)| got.abs_diff(want) <= 3), "{band:?} vs {wanted:?}");
            assert_eq!(pixel(path, 1800, 100), [255, 255, 255], "paper is white");
            let top = image::open(path).expect("a PNG").to_rgb8();
            let inked = (0..1920)
                .flat_map(|x| (240..330).map(move |y| (x, y)))
                .filter(|&(x, y)| top.get_pixel(x, y).0[0] < 60)
                .count();
            assert!(inked > 500, "the title is drawn ({inked} dark pixels)");
        }
    }

    #[test]
    fn limits_hold() {
        let out = tempfile::tempdir().expect("temp dir");
        let pdf = crate::sample::sample_pdf(&["one", "two", "three"]);
        let few = Limits { max_pages: 2, ..Limits::default() };
        let outcome = render_pdf(pdf.clone(), few, out.path(), |_, _| {});
        assert!(matches!(outcome, Err(PdfError::TooManyPages { pages: 3, max: 2 })), "{outcome:?}");
        assert_eq!(std::fs::read_dir(out.path()).expect("reads").count(), 0, "nothing written");
        let small = Limits { side: 320, ..Limits::default() };
        render_pdf(pdf.clone(), small, out.path(), |_, _| {}).expect("renders");
        assert_eq!(image::image_dimensions(page_file(out.path(), 0)).expect("a PNG"), (320, 180));
        // A picture limit no page meets even drawn at half size.
        let tiny = Limits { max_png_bytes: 16, ..Limits::default() };
        let outcome = render_pdf(pdf, tiny, out.path(), |_, _| {});
        assert!(matches!(outcome, Err(PdfError::PageTooBig { page: 1, max: 16 })), "{outcome:?}");
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        let out = tempfile::tempdir().expect("temp dir");
        for bytes in [Vec::new(), b"%PDF-1.7\n".to_vec(), vec![0xff; 10_000], b"%PDF-1.4\n1 0 obj <<".repeat(50)] {
            let outcome = render_pdf(bytes, Limits::default(), out.path(), |_, _| {});
            assert!(matches!(outcome, Err(PdfError::Unreadable | PdfError::NoPages)), "{outcome:?}");
        }
        assert_eq!(std::fs::read_dir(out.path()).expect("reads").count(), 0, "nothing written");
    }
}

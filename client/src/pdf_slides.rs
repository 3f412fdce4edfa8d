//! PDF slides: `/slides TALK.pdf` (or a PDF in the stage panel's list) draws the PDF's pages
//! into pictures with `sanctuary render-pdf` in a child process (see `sanctuary_pdf`), off the
//! frame; when that is done the pictures are presented as any deck of images. Viewers only
//! ever get the pictures.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use sanctuary_net::Command;

use crate::Frame;
use crate::network::{ChatInput, NetLink, Social};

/// How long a PDF may take to draw, all pages together.
pub const PDF_WALL: Duration = Duration::from_secs(120);

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<PdfSlides>()
        .add_systems(Update, (start_typed, finish).chain().in_set(Frame::Input).run_if(resource_exists::<NetLink>));
}

/// The PDF being drawn, if any, and where pictures go.
#[derive(Resource, Debug)]
pub struct PdfSlides {
    /// The program that draws (this one, run as `render-pdf`); `None` if it cannot be found.
    renderer: Option<PathBuf>,
    /// Each PDF's pages go into a folder of its own here.
    out_root: PathBuf,
    /// The renderer's memory, in bytes.
    memory: u64,
    job: Option<Job>,
}

#[derive(Debug)]
struct Job {
    pdf: PathBuf,
    started: Instant,
    worker: JoinHandle<Result<Vec<PathBuf>, String>>,
}

impl Default for PdfSlides {
    /// This program as the renderer; pictures in the system's temporary folder.
    fn default() -> Self {
        Self::new(std::env::current_exe().ok(), std::env::temp_dir().join("sanctuary-slides"))
    }
}

impl PdfSlides {
    /// Draws with `renderer render-pdf` into folders under `out_root`.
    pub fn new(renderer: Option<PathBuf>, out_root: PathBuf) -> Self {
        Self { renderer, out_root, memory: sanctuary_pdf::CHILD_MEMORY_BYTES, job: None }
    }

    /// The same, with the renderer held to `bytes` of memory (less than the 2 GiB it has).
    pub fn with_memory(self, bytes: u64) -> Self {
        Self { memory: bytes.min(sanctuary_pdf::CHILD_MEMORY_BYTES), ..self }
    }

    /// Starts drawing the PDF at `pdf`; what to tell, or why not (one PDF at a time).
    pub fn start(&mut self, pdf: &Path) -> Result<String, String> {
        let name = display_name(pdf);
        if let Some(job) = &self.job {
            return Err(format!("still drawing {}; one PDF at a time", display_name(&job.pdf)));
        }
        if !pdf.is_file() {
            return Err(format!("{}: no such file", pdf.display()));
        }
        let renderer = self.renderer.clone().ok_or("cannot find this program to draw the PDF with")?;
        let out = self.out_root.join(deck_folder(pdf));
        let (path, memory) = (pdf.to_owned(), self.memory);
        let worker = std::thread::Builder::new()
            .name("pdf-slides".into())
            .spawn(move || sanctuary_pdf::render_in_child(&renderer, &path, &out, PDF_WALL, memory))
            .map_err(|error| format!("cannot draw {name}: {error}"))?;
        self.job = Some(Job { pdf: pdf.to_owned(), started: Instant::now(), worker });
        Ok(format!("drawing the pages of {name}..."))
    }

    /// The PDF being drawn and for how long.
    pub fn busy(&self) -> Option<(&Path, Duration)> {
        self.job.as_ref().map(|job| (job.pdf.as_path(), job.started.elapsed()))
    }

    /// The drawing that has ended, if one has: the PDF and its pictures in page order, or why
    /// not.
    pub fn finished(&mut self) -> Option<(PathBuf, Result<Vec<PathBuf>, String>)> {
        if !self.job.as_ref().is_some_and(|job| job.worker.is_finished()) {
            return None;
        }
        let job = self.job.take()?;
        let pages = job.worker.join().unwrap_or_else(|_| Err("the PDF drawing thread failed".into()));
        Some((job.pdf, pages))
    }
}

/// Whether `typed` names a PDF (by its extension), for `/slides`.
pub fn is_pdf(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| extension.eq_ignore_ascii_case("pdf"))
}

/// The file's name as people know it.
fn display_name(pdf: &Path) -> String {
    pdf.file_name().map_or_else(|| pdf.display().to_string(), |name| name.to_string_lossy().into_owned())
}

/// The folder a PDF's pages go into: its name, made safe for a folder's (letters, digits,
/// `-` and `_`, at most 48), and a short hash of its whole path so that two `talk.pdf`s in
/// different folders keep apart.
fn deck_folder(pdf: &Path) -> String {
    let stem = pdf.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let safe: String =
        stem.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(48).collect();
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(pdf.as_os_str(), &mut hasher);
    format!("{safe}-{:08x}", std::hash::Hasher::finish(&hasher) as u32)
}

/// `/slides FILE.pdf` from the chat box.
fn start_typed(mut input: ResMut<ChatInput>, mut slides: ResMut<PdfSlides>, mut social: ResMut<Social>) {
    let Some(pdf) = input.pdf.take() else { return };
    social.notice(slides.start(&pdf).unwrap_or_else(|problem| problem));
}

/// A PDF drawn: its pictures presented, or why not told.
fn finish(mut slides: ResMut<PdfSlides>, mut social: ResMut<Social>, link: Res<NetLink>) {
    let Some((pdf, pages)) = slides.finished() else { return };
    let name = display_name(&pdf);
    let command = pages.and_then(|pages| {
        let count = pages.len();
        crate::stage_command::present_files(pages).map(|command| (command, count))
    });
    match command {
        Ok((command, count)) => {
            social.notice(format!("{name}: {count} pages drawn; sharing them as slides..."));
            link.send(command);
        }
        Err(problem) => social.notice(format!("{name}: {problem}")),
    }
}

/// A PDF's pages as the node's command, for tests: starts `slides` on `pdf` and waits (at most
/// `wait`) for the drawing to end.
pub fn draw_and_wait(slides: &mut PdfSlides, pdf: &Path, wait: Duration) -> Result<Command, String> {
    slides.start(pdf)?;
    let started = Instant::now();
    loop {
        if let Some((_, pages)) = slides.finished() {
            return crate::stage_command::present_files(pages?);
        }
        if started.elapsed() > wait {
            return Err("still drawing".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdfs_are_told_by_their_extension_and_kept_apart_by_path() {
        assert!(is_pdf(Path::new("talk.pdf")) && is_pdf(Path::new("/a/TALK.PDF")));
        assert!(!is_pdf(Path::new("talk.png")) && !is_pdf(Path::new("pdf")));
        let (one, two) = (deck_folder(Path::new("/a/my talk.pdf")), deck_folder(Path::new("/b/my talk.pdf")));
        assert!(one.starts_with("my_talk-") && two.starts_with("my_talk-") && one != two, "{one} {two}");
        assert!(!deck_folder(Path::new("/x/../../etc.pdf")).contains('/'));
    }

    #[test]
    fn one_pdf_at_a_time_and_missing_ones_told() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A renderer that takes its time: the shell, asked to sleep.
        let mut slides = PdfSlides::new(Some(PathBuf::from("/bin/sleep")), dir.path().to_owned());
        assert!(slides.start(&dir.path().join("missing.pdf")).is_err_and(|problem| problem.contains("no such file")));
        let pdf = dir.path().join("talk.pdf");
        std::fs::write(&pdf, sanctuary_pdf::sample::sample_pdf(&["one"])).expect("writes");
        assert!(slides.start(&pdf).is_ok());
        assert!(slides.busy().is_some());
        assert!(slides.start(&pdf).is_err_and(|problem| problem.contains("one PDF at a time")));
        // `sleep render-pdf ...` fails at once: the failure is told, and the next may start.
        let started = Instant::now();
        let outcome = loop {
            if let Some((_, outcome)) = slides.finished() {
                break outcome;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the renderer ended");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(outcome.is_err(), "{outcome:?}");
        assert!(slides.busy().is_none());
        let mut lost = PdfSlides::new(None, dir.path().to_owned());
        assert!(lost.start(&pdf).is_err_and(|problem| problem.contains("cannot find")));
    }
}

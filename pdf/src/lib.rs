//! Sanctuary's PDF slides. A presenter's PDF becomes the lecture hall's slides as one PNG
//! picture a page, drawn on the presenter's machine only: viewers get pictures, never PDF code.
//!
//! A PDF is a program of sorts, and a hostile one can ask for gigabytes or loop for minutes.
//! Nothing can stop a render once it runs on a thread, so pages are drawn by a child process
//! (`sanctuary render-pdf`, see [`render_command`]) that caps its own memory and CPU time, and
//! its parent ([`render_in_child`]) kills it after a wall-clock limit. The worst a PDF can do is
//! fail to become slides.

mod child;
mod render;
pub mod sample;

pub use child::{
    CHILD_CPU_SECONDS, CHILD_MEMORY_BYTES, ChildError, Finished, limit_self, render_in_child, run_limited,
};
pub use render::{Limits, PdfError, page_file, render_command, render_pdf};

/// The largest PDF read, in bytes.
pub const MAX_PDF_BYTES: u64 = 128 << 20;

//! The greeter's knowledge: the README, cut into its sections' paragraphs and list items, each
//! answer a question can find by its words. No model: a question's words (lower case, simply
//! stemmed, common words dropped) are scored against each passage's, rarer words counting more
//! and the section's heading counting thrice, and the best passage answers in its first
//! sentences, naming the section it comes from.

use std::collections::{HashMap, HashSet};

use sanctuary_net::MAX_TEXT_CHARS;

/// The README, built in: what the greeter knows.
pub const README: &str = include_str!("../../README.md");

/// The most characters of an answer, leaving room for the name it is addressed to.
const ANSWER_CHARS: usize = MAX_TEXT_CHARS - 80;

/// Sections a newcomer's questions are answered from (others, such as the benchmarks, are
/// for developers).
const SECTIONS: [&str; 13] = [
    "In the world",
    "Meeting people",
    "Avatars",
    "Trust, friends and shields",
    "Voice",
    "The cinema",
    "The lecture hall",
    "The meeting room",
    "The private room",
    "Building in the city",
    "Paying and trading",
    "In VR",
    "Open to everyone, hurt by no one",
];

/// Words that say nothing about what is asked.
const COMMON: [&str; 58] = [
    "a", "an", "the", "and", "or", "to", "of", "in", "on", "at", "for", "with", "by", "from", "is", "are", "be", "it",
    "its", "i", "me", "my", "you", "your", "we", "our", "do", "doe", "can", "could", "how", "what", "where", "who",
    "why", "when", "which", "there", "here", "this", "that", "they", "them", "their", "as", "if", "so", "not", "no",
    "any", "some", "into", "up", "out", "about", "anyone", "please", "hi",
];

/// One passage that can answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The section it is in.
    pub section: String,
    /// Its text, markup taken out.
    pub text: String,
    words: HashSet<String>,
    heading: HashSet<String>,
}

/// Passages and how rare each word is among them.
#[derive(Debug, Clone)]
pub struct Knowledge {
    passages: Vec<Passage>,
    rarity: HashMap<String, f32>,
}

impl Knowledge {
    /// The knowledge in the README built in.
    pub fn from_readme() -> Self {
        Self::from_markdown(README)
    }

    /// The knowledge in a Markdown text: its [`SECTIONS`].
    pub fn from_markdown(text: &str) -> Self {
        let mut passages = Vec::new();
        let mut section: Option<&str> = None;
        let mut block = String::new();
        let mut in_code = false;
        let flush = |section: Option<&str>, block: &mut String, passages: &mut Vec<Passage>| {
            if let Some(section) = section {
                let text = plain(block);
                if text.split_whitespace().count() >= 6 {
                    let heading = words(section);
                    passages.push(Passage { section: section.to_owned(), words: words(&text), heading, text });
                }
            }
            block.clear();
        };
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if in_code {
                continue;
            }
            if let Some(heading) = line.strip_prefix("## ") {
                flush(section, &mut block, &mut passages);
                section = SECTIONS.iter().find(|known| **known == heading.trim()).copied();
                continue;
            }
            if line.starts_with('#') {
                flush(section, &mut block, &mut passages);
                section = None;
                continue;
            }
            let trimmed = line.trim();
            let starts_item = trimmed.starts_with("- ") || trimmed.starts_with("* ");
            if trimmed.is_empty() || starts_item || trimmed.starts_with('|') || trimmed.starts_with("![") {
                flush(section, &mut block, &mut passages);
                if trimmed.starts_with('|') || trimmed.starts_with("![") {
                    continue;
                }
            }
            block.push_str(trimmed.trim_start_matches("- ").trim_start_matches("* "));
            block.push(' ');
        }
        flush(section, &mut block, &mut passages);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for passage in &passages {
            for word in passage.words.iter().chain(passage.heading.difference(&passage.words)) {
                *counts.entry(word.clone()).or_default() += 1;
            }
        }
        let total = passages.len().max(1) as f32;
        let rarity = counts.into_iter().map(|(word, count)| (word, (total / count as f32).ln() + 1.0)).collect();
        Self { passages, rarity }
    }

    /// How many passages it holds.
    pub fn len(&self) -> usize {
        self.passages.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
    }

    /// The passage that best answers `question`, if any shares a telling word with it.
    pub fn find(&self, question: &str) -> Option<&Passage> {
        let asked = words(question);
        if asked.is_empty() {
            return None;
        }
        let score = |passage: &Passage| -> f32 {
            asked
                .iter()
                .map(|word| {
                    let rarity = self.rarity.get(word).copied().unwrap_or(0.0);
                    let mut score = 0.0;
                    if passage.words.contains(word) {
                        score += rarity;
                    }
                    if passage.heading.contains(word) {
                        score += 3.0 * rarity;
                    }
                    score
                })
                .sum::<f32>()
                // Long passages match more words by their length alone.
                / (passage.words.len() as f32).sqrt().max(4.0).ln()
        };
        let (best, value) =
            self.passages.iter().map(|passage| (passage, score(passage))).max_by(|a, b| a.1.total_cmp(&b.1))?;
        (value > 0.5).then_some(best)
    }

    /// An answer to `question`: the best passage's first sentences, said to be from the
    /// README's section.
    pub fn answer(&self, question: &str) -> Option<String> {
        let passage = self.find(question)?;
        let mut answer = String::new();
        for sentence in sentences(&passage.text) {
            if !answer.is_empty() && answer.chars().count() + sentence.chars().count() > ANSWER_CHARS / 2 {
                break;
            }
            answer.push_str(sentence);
            answer.push(' ');
        }
        let answer: String = answer.trim().chars().take(ANSWER_CHARS).collect();
        Some(format!("{answer} (from the README, \"{}\")", passage.section))
    }
}

/// The sentences of a passage, each with its full stop.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let rest_trimmed = rest.trim_start();
        if rest_trimmed.is_empty() {
            return None;
        }
        let end = rest_trimmed
            .char_indices()
            .find(|(at, c)| {
                matches!(c, '.' | '!' | '?')
                    && rest_trimmed[at + c.len_utf8()..].chars().next().is_none_or(char::is_whitespace)
            })
            .map_or(rest_trimmed.len(), |(at, c)| at + c.len_utf8());
        let (sentence, after) = rest_trimmed.split_at(end);
        rest = after;
        Some(sentence)
    })
}

/// Markdown markup out: emphasis, code marks, links' targets.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' | '`' => {}
            ']' if chars.peek() == Some(&'(') => {
                // A link's target: skipped to its closing bracket.
                for skipped in chars.by_ref() {
                    if skipped == ')' {
                        break;
                    }
                }
            }
            '[' => {}
            _ => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The telling words of a text: lower case, simply stemmed, common words out.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| stem(&word.to_lowercase()))
        .filter(|word| word.len() > 1 && !COMMON.contains(&word.as_str()))
        .collect()
}

/// A crude stem: "building", "builds" and "build" meet; "paying" and "pay"; "friends" and
/// "friend".
fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(root) = word.strip_suffix(suffix)
            && root.len() >= 3
        {
            return root.to_owned();
        }
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newcomers_questions_find_the_readmes_sections() {
        let knowledge = Knowledge::from_readme();
        assert!(knowledge.len() > 30, "{} passages", knowledge.len());
        let section = |question: &str| knowledge.find(question).map(|passage| passage.section.clone());
        assert_eq!(section("where can I build?").as_deref(), Some("Building in the city"));
        assert_eq!(section("how do I pay for things?").as_deref(), Some("Paying and trading"));
        assert_eq!(section("how do I make friends?").as_deref(), Some("Trust, friends and shields"));
        let answer = knowledge.answer("where can I build?").expect("an answer");
        assert!(
            answer.contains("parcel") && answer.ends_with("(from the README, \"Building in the city\")"),
            "{answer}"
        );
        assert!(answer.chars().count() <= MAX_TEXT_CHARS - 40);
        assert!(!answer.contains('`') && !answer.contains("**"), "markup taken out: {answer}");
    }

    #[test]
    fn nothing_telling_finds_nothing() {
        let knowledge = Knowledge::from_readme();
        assert_eq!(knowledge.find("how are you?"), None);
        assert_eq!(knowledge.find(""), None);
        assert_eq!(knowledge.find("zzzz qqqq"), None);
        let long = "why ".repeat(10_000);
        assert_eq!(knowledge.find(&long), None);
    }

    #[test]
    fn markdown_is_cut_into_passages_without_markup() {
        let text = "## Voice\n\nHold **V** to talk; see [the guide](docs/voice.md) for `--mic` settings.\n\n\
                    - **Mute**: press M to mute your microphone for everyone.\n\n```sh\ncargo run voice here now please\n```\n\
                    ## Benchmarks\n\nNumbers numbers numbers numbers numbers numbers.\n";
        let knowledge = Knowledge::from_markdown(text);
        assert_eq!(knowledge.len(), 2, "code and other sections left out");
        assert_eq!(knowledge.passages[0].text, "Hold V to talk; see the guide for --mic settings.");
        assert_eq!(
            knowledge.find("how do I mute?").map(|passage| passage.text.as_str()),
            Some("Mute: press M to mute your microphone for everyone.")
        );
    }
}

//! What an input file is, from its first bytes: gzip (decompressed on the fly), then JSON lines
//! or one whole JSON document. `replay` reads every input through here; see `crate::replay`
//! for what each form becomes.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use serde::de::{Deserialize, IgnoredAny};

use crate::input::documents::{self, MAX_DOCUMENT_BYTES};

/// Lines longer than this are cut in the dead-letter copy (they are rejected anyway).
pub const MAX_RAW_COPY: usize = 64 << 20;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The input, decompressed when it starts with the gzip magic bytes (as CloudTrail writes its
/// log files to S3, whatever the file is called).
pub fn decompressed<'r>(mut input: Counting<'r>) -> io::Result<Box<dyn BufRead + 'r>> {
    if input.fill_buf()?.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(input))))
    } else {
        Ok(Box::new(input))
    }
}

/// Blank lines skipped before the first that is not.
#[derive(Default)]
pub struct Blank {
    pub lines: u64,
    pub bytes: u64,
}

/// What the start of an input showed it to be.
pub enum Form<'r> {
    Empty,
    /// A whole document, read.
    Document(Vec<u8>),
    /// JSON lines: these bytes, read ahead, then the rest of the input.
    Lines(Vec<u8>, Box<dyn BufRead + 'r>),
}

/// Reads as far as needed to tell the form: past blank lines (counted in `blank`), the first
/// line, and when that line opens a JSON value it does not close, as far as the value goes.
pub fn read_form<'r>(input: &'r mut dyn BufRead, blank: &mut Blank) -> io::Result<Form<'r>> {
    let mut first = Vec::new();
    let read = loop {
        first.clear();
        let read = read_line_bounded(input, &mut first, MAX_DOCUMENT_BYTES)?;
        if read == 0 {
            return Ok(Form::Empty);
        }
        if !first.iter().all(u8::is_ascii_whitespace) {
            break read;
        }
        blank.lines += 1;
        blank.bytes += read as u64;
    };
    if read > first.len() {
        // Cut at the document bound: a line (too large) for the lines loop to reject.
        first.push(b'\n');
        return Ok(Form::Lines(first, Box::new(input)));
    }
    let text = first.trim_ascii();
    if !matches!(text.first(), Some(b'{' | b'[')) {
        return Ok(Form::Lines(first, Box::new(input)));
    }
    match serde_json::from_slice::<IgnoredAny>(text) {
        // One line of many records is a document when nothing follows it (a log file as
        // CloudTrail writes it); otherwise a line of JSON lines, dead-lettered as such.
        Ok(_) if documents::holds_records(text) => {
            let mut ahead = first.clone();
            if only_blank_lines_follow(input, &mut ahead)? {
                Ok(Form::Document(first))
            } else {
                Ok(Form::Lines(ahead, Box::new(input)))
            }
        }
        Ok(_) => Ok(Form::Lines(first, Box::new(input))),
        Err(e) if e.is_eof() => read_spanning_value(first, input),
        Err(_) => Ok(Form::Lines(first, Box::new(input))),
    }
}

/// Reads blank lines into `ahead` until the end (true) or a line that is not blank (false, the
/// line in `ahead` too).
fn only_blank_lines_follow(input: &mut dyn BufRead, ahead: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let at = ahead.len();
        let read = read_line_bounded(input, ahead, MAX_RAW_COPY)?;
        if read == 0 {
            return Ok(true);
        }
        let line_ws = ahead.get(at..).is_some_and(|l| l.iter().all(u8::is_ascii_whitespace));
        if read > MAX_RAW_COPY || !line_ws {
            if read > MAX_RAW_COPY {
                ahead.push(b'\n');
            }
            return Ok(false);
        }
    }
}

/// `first` opens a JSON value it does not close: parse on from the input, keeping the bytes.
/// A value that ends with only whitespace after it is a document; anything else is JSON lines
/// (the parse stops within a line or two of where such a file stops being one value).
fn read_spanning_value<'r>(first: Vec<u8>, input: &'r mut dyn BufRead) -> io::Result<Form<'r>> {
    let mut recorder = Recorder { inner: Cursor::new(first).chain(input), seen: Vec::new(), over: false };
    let parsed = IgnoredAny::deserialize(&mut serde_json::Deserializer::from_reader(&mut recorder));
    if recorder.over {
        return Err(too_large_document());
    }
    let Recorder { inner: mut rest, mut seen, .. } = recorder;
    if parsed.is_err() {
        return Ok(Form::Lines(seen, Box::new(rest)));
    }
    let at = seen.len();
    if only_blank_lines_follow(&mut rest, &mut seen)? {
        seen.truncate(at);
        return Ok(Form::Document(seen));
    }
    Ok(Form::Lines(seen, Box::new(rest)))
}

fn too_large_document() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "a whole JSON document is read into memory, up to {} MiB, and this one is larger: split it (e.g. \
             `jq -c '.Records[]'` gives one record per line, which is streamed)",
            MAX_DOCUMENT_BYTES >> 20
        ),
    )
}

/// Counts the bytes taken from the input, for progress (the file's size is its compressed size).
pub struct Counting<'a> {
    pub inner: &'a mut dyn BufRead,
    pub consumed: &'a Cell<u64>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

impl BufRead for Counting<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.consumed.set(self.consumed.get() + amount as u64);
        self.inner.consume(amount)
    }
}

/// Keeps every byte read through it, up to [`MAX_DOCUMENT_BYTES`] (then `over`, and an error).
struct Recorder<R> {
    inner: R,
    seen: Vec<u8>,
    over: bool,
}

impl<R: BufRead> Read for Recorder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.inner.fill_buf()?;
        let n = buf.len().min(out.len());
        if self.seen.len() + n > MAX_DOCUMENT_BYTES {
            self.over = true;
            return Err(too_large_document());
        }
        out[..n].copy_from_slice(&buf[..n]);
        self.seen.extend_from_slice(&buf[..n]);
        self.inner.consume(n);
        Ok(n)
    }
}

/// Read through the next newline, keeping at most `max` bytes; returns the bytes consumed.
pub fn read_line_bounded(input: &mut dyn BufRead, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let mut consumed = 0;
    let limit = out.len() + max;
    loop {
        let (done, used) = {
            let buf = match input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(consumed);
            }
            let (done, used) = match memchr(b'\n', buf) {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            };
            let room = limit.saturating_sub(out.len());
            out.extend_from_slice(&buf[..used.min(room)]);
            (done, used)
        };
        input.consume(used);
        consumed += used;
        if done {
            return Ok(consumed);
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines() {
        let mut input = io::Cursor::new(b"abc\ndefgh\n\nxy".to_vec());
        let mut out = Vec::new();
        assert_eq!(read_line_bounded(&mut input, &mut out, 2).unwrap(), 4);
        assert_eq!(out, b"ab");
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 6);
        assert_eq!(out, b"defgh\n");
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 1);
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 2);
        assert_eq!(out, b"xy");
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 0);
    }
}

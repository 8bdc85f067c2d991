//! What one byte stream holds, before any JSON is parsed.
//!
//! Standard input (`cat *.json.gz | trailwatch detect -`) and files made by
//! concatenation carry several things back to back: gzip members, plain JSON
//! documents, or a mix of both. This module owns the two steps that make
//! such a stream readable:
//! - [`Unzip`] decompresses every gzip member wherever it starts and passes
//!   plain text through. JSON never contains the byte `0x1f` outside an
//!   escape, so that byte at a boundary always starts a gzip member;
//! - [`next_document`] cuts the decoded text into top-level JSON values by
//!   their brackets (strings and escapes tracked), so each document is
//!   parsed on its own, with its own size cap, and one damaged document does
//!   not hide the ones after it.

use flate2::bufread::GzDecoder;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Decompressed input held in memory at once by every reader in the
/// process, beyond each buffer's first [`HELD_FREE`] bytes: the 1 GiB cap
/// on a document holds for all the threads reading together, so two gzip
/// bombs on two cores cannot take 2 GiB.
pub const HELD_LIMIT: usize = 1 << 30;
/// What a buffer may hold without drawing on [`HELD_LIMIT`]: more than any
/// CloudTrail delivery, so ordinary reading never touches the shared count.
pub const HELD_FREE: usize = 64 << 20;

static HELD: AtomicUsize = AtomicUsize::new(0);

/// One buffer's share of [`HELD_LIMIT`]; given back when dropped.
#[derive(Debug, Default)]
pub struct Held {
    bytes: usize,
}

/// The shared limit would be passed: the buffer must not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

impl Held {
    /// Covers a buffer of `len` bytes, drawing what lies beyond
    /// [`HELD_FREE`] from the shared count.
    pub fn cover(&mut self, len: usize) -> Result<(), OverBudget> {
        let want = len.saturating_sub(HELD_FREE);
        if want <= self.bytes {
            return Ok(());
        }
        let more = want - self.bytes;
        let before = HELD.fetch_add(more, Ordering::AcqRel);
        if before + more > HELD_LIMIT {
            HELD.fetch_sub(more, Ordering::AcqRel);
            return Err(OverBudget);
        }
        self.bytes = want;
        Ok(())
    }

    /// Gives the share back (the buffer was emptied).
    pub fn release(&mut self) {
        HELD.fetch_sub(std::mem::take(&mut self.bytes), Ordering::AcqRel);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

/// The first byte of a gzip member (`1f 8b`).
const GZIP_FIRST: u8 = 0x1f;

enum State<R: BufRead> {
    Plain(R),
    Member(GzDecoder<R>),
    /// Only while switching between the other two.
    Switching,
}

/// Decodes gzip members and passes plain text through, in the order they
/// come. A damaged member is an [`io::ErrorKind::InvalidData`] error; what was
/// decoded before it has been returned already.
pub struct Unzip<R: BufRead> {
    state: State<R>,
    members: u64,
}

impl<R: BufRead> Unzip<R> {
    pub fn new(inner: R) -> Self {
        Unzip {
            state: State::Plain(inner),
            members: 0,
        }
    }

    /// Gzip members started so far.
    pub fn members(&self) -> u64 {
        self.members
    }
}

impl<R: BufRead> Read for Unzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.state {
                State::Member(decoder) => {
                    let n = decoder.read(buf).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("gzip member: {e}"))
                    })?;
                    if n > 0 {
                        return Ok(n);
                    }
                    // The member ended: what follows may be plain or another member.
                    let State::Member(decoder) =
                        std::mem::replace(&mut self.state, State::Switching)
                    else {
                        unreachable!("matched a member above")
                    };
                    self.state = State::Plain(decoder.into_inner());
                }
                State::Plain(inner) => {
                    let available = inner.fill_buf()?;
                    if available.is_empty() {
                        return Ok(0);
                    }
                    if available[0] == GZIP_FIRST {
                        let State::Plain(inner) =
                            std::mem::replace(&mut self.state, State::Switching)
                        else {
                            unreachable!("matched plain text above")
                        };
                        self.members += 1;
                        self.state = State::Member(GzDecoder::new(inner));
                        continue;
                    }
                    let plain = available
                        .iter()
                        .position(|&b| b == GZIP_FIRST)
                        .unwrap_or(available.len())
                        .min(buf.len());
                    buf[..plain].copy_from_slice(&available[..plain]);
                    inner.consume(plain);
                    return Ok(plain);
                }
                State::Switching => unreachable!("the state is restored before returning"),
            }
        }
    }
}

/// How [`next_document`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentEnd {
    /// Nothing but white space was left.
    Eof,
    /// One complete top-level value (or, for a bare scalar, one line).
    Complete,
    /// The stream ended inside the value.
    Truncated,
    /// The value grew past the limit; the rest of it was skipped.
    TooLarge,
}

/// Reads the next top-level JSON value of `reader` into `out` (cleared
/// first), without parsing it: brackets are counted outside strings. A value
/// that is not an object or array runs to the end of its line. At most
/// `limit` bytes are kept, and only while `held` can cover them; a larger
/// value is skipped to its end, so the documents after it are still read.
pub fn next_document(
    reader: &mut impl BufRead,
    out: &mut Vec<u8>,
    limit: usize,
    held: &mut Held,
) -> io::Result<DocumentEnd> {
    out.clear();
    held.release();
    // Leading white space.
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(DocumentEnd::Eof);
        }
        let blank = available
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let more = blank < available.len();
        reader.consume(blank);
        if more {
            break;
        }
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut scalar = false;
    let mut started = false;
    let mut too_large = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(if too_large {
                DocumentEnd::TooLarge
            } else if scalar {
                DocumentEnd::Complete
            } else {
                DocumentEnd::Truncated
            });
        }
        let mut end = None;
        for (i, &b) in available.iter().enumerate() {
            if !started {
                started = true;
                match b {
                    b'{' | b'[' => depth = 1,
                    _ => scalar = true,
                }
                continue;
            }
            if scalar {
                if b == b'\n' {
                    end = Some(i + 1);
                    break;
                }
                continue;
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let take = end.unwrap_or(available.len());
        if !too_large {
            if out.len() + take > limit || held.cover(out.len() + take).is_err() {
                too_large = true;
                out.clear();
                out.shrink_to(HELD_FREE);
                held.release();
            } else {
                out.extend_from_slice(&available[..take]);
            }
        }
        reader.consume(take);
        if end.is_some() {
            return Ok(if too_large {
                DocumentEnd::TooLarge
            } else {
                DocumentEnd::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::{BufReader, Write};

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn unzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // A tiny buffer, so members and plain runs straddle refills.
        Unzip::new(BufReader::with_capacity(7, bytes)).read_to_end(&mut out)?;
        Ok(out)
    }

    fn documents(bytes: &[u8], limit: usize) -> Vec<(DocumentEnd, String)> {
        let mut reader = BufReader::with_capacity(5, bytes);
        let mut out = Vec::new();
        let mut docs = Vec::new();
        let mut held = Held::default();
        loop {
            let end = next_document(&mut reader, &mut out, limit, &mut held).unwrap();
            if end == DocumentEnd::Eof {
                return docs;
            }
            docs.push((end, String::from_utf8(out.clone()).unwrap()));
        }
    }

    #[test]
    fn the_shared_limit_is_drawn_on_only_past_the_free_share_and_given_back() {
        let mut a = Held::default();
        a.cover(HELD_FREE).unwrap();
        assert_eq!(a.bytes, 0, "ordinary buffers never touch the shared count");
        let mut b = Held::default();
        a.cover(HELD_FREE + HELD_LIMIT / 2).unwrap();
        b.cover(HELD_FREE + HELD_LIMIT / 4).unwrap();
        // Other tests may hold a share at the same time: ask for all of it.
        assert_eq!(b.cover(HELD_FREE + HELD_LIMIT), Err(OverBudget));
        drop(a);
        b.cover(HELD_FREE + HELD_LIMIT / 2).unwrap();
    }

    #[test]
    fn members_and_plain_text_come_out_in_order() {
        let mut stream = gzip(b"{\"a\":1}");
        stream.extend_from_slice(b"\n{\"b\":2}");
        stream.extend(gzip(b"{\"c\":3}"));
        stream.extend(gzip(b""));
        stream.extend(gzip(b"{\"d\":4}"));
        assert_eq!(
            String::from_utf8(unzip(&stream).unwrap()).unwrap(),
            "{\"a\":1}\n{\"b\":2}{\"c\":3}{\"d\":4}"
        );
        assert_eq!(unzip(b"plain only").unwrap(), b"plain only");
    }

    #[test]
    fn a_damaged_member_is_invalid_data_after_what_came_before() {
        let mut stream = b"{\"a\":1}".to_vec();
        let member = gzip(&[b'x'; 5000]);
        stream.extend_from_slice(&member[..member.len() / 2]);
        let mut out = Vec::new();
        let e = Unzip::new(BufReader::new(stream.as_slice()))
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(out.starts_with(b"{\"a\":1}"));
        assert!(e.to_string().contains("gzip"), "{e}");
    }

    #[test]
    fn documents_are_cut_by_their_brackets_not_their_lines() {
        let text = "{\"Records\":[{\"s\":\"}]{\\\"\"}]}{\"Records\":[]}\n  [1,\n2]\n42\n";
        let docs = documents(text.as_bytes(), 1 << 20);
        assert_eq!(
            docs,
            [
                (
                    DocumentEnd::Complete,
                    "{\"Records\":[{\"s\":\"}]{\\\"\"}]}".to_string()
                ),
                (DocumentEnd::Complete, "{\"Records\":[]}".to_string()),
                (DocumentEnd::Complete, "[1,\n2]".to_string()),
                (DocumentEnd::Complete, "42\n".to_string()),
            ]
        );
    }

    #[test]
    fn a_truncated_or_oversized_document_is_said_so_and_the_next_still_read() {
        let docs = documents(b"{\"a\":[1,2", 100);
        assert_eq!(docs, [(DocumentEnd::Truncated, "{\"a\":[1,2".to_string())]);
        let big = format!("{{\"a\":\"{}\"}} {{\"b\":1}}", "x".repeat(200));
        let docs = documents(big.as_bytes(), 100);
        assert_eq!(
            docs,
            [
                (DocumentEnd::TooLarge, String::new()),
                (DocumentEnd::Complete, "{\"b\":1}".to_string())
            ]
        );
    }
}

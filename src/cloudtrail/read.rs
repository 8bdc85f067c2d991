//! Turning one input (a file or standard input) into records.
//!
//! Formats are recognised by content, not by name:
//! - gzip (magic bytes `1f 8b`) is decompressed first, with a cap on the output;
//! - an S3 delivery `{"Records":[…]}` (Insight deliveries are recognised and skipped);
//! - a digest file (`digestStartTime`, …) is recognised and skipped;
//! - a CloudWatch Logs subscription payload, either as delivered to a Lambda
//!   (`{"awslogs":{"data":"<base64 gzip>"}}`) or decoded (`{"messageType", "logEvents"}`);
//! - JSON lines, one event per line (CloudTrail Lake or EventBridge exports; an
//!   EventBridge envelope's `detail` is unwrapped);
//! - a JSON array of events, or a single pretty-printed event.
//!
//! A damaged delivery is salvaged record by record: records before and after
//! the damage are kept where the structure allows, and each problem names the
//! input and the record index, line or byte offset.

use super::parse::{parse_document, parse_record, raw_from_value, Document, RawRecord};
use super::projection::Projection;
use super::record::{type_name, Record, RecordError};
use super::stream::{next_document, DocumentEnd, Held, Unzip, HELD_FREE, HELD_LIMIT};
use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use serde_json::Value;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

/// Decompressed size above which a whole-document input is refused
/// (CloudTrail's own deliveries are far smaller).
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 30;
/// Longest accepted line in JSON lines input.
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// Where in an input a problem sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Whole,
    /// Index in the `Records` array, 0-based as in the file.
    Record(usize),
    /// Line in JSON lines input, 1-based.
    Line(usize),
    /// Byte offset in the decompressed input.
    Byte(usize),
    /// Index in a CloudWatch Logs payload's `logEvents`.
    LogEvent(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Whole => Ok(()),
            Location::Record(i) => write!(f, ": record {i}"),
            Location::Line(n) => write!(f, ": line {n}"),
            Location::Byte(b) => write!(f, ": byte offset {b}"),
            Location::LogEvent(i) => write!(f, ": logEvents[{i}]"),
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
    #[error("damaged or truncated gzip ({0})")]
    Gzip(#[source] io::Error),
    #[error(
        "larger than {limit} bytes once decompressed; split it or check that it is CloudTrail"
    )]
    TooLarge { limit: u64 },
    #[error("more than {limit} bytes of decompressed input would be held in memory at once, counting every file read beside it; read it alone, or check that it is CloudTrail")]
    OverBudget { limit: usize },
    #[error("invalid JSON ({0})")]
    Json(#[source] serde_json::Error),
    #[error("expected ',' or ']' between records")]
    MissingSeparator,
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),
    #[error("not CloudTrail: expected {{\"Records\":[…]}}, JSON lines of events, or a CloudWatch Logs payload, found {0}")]
    NotCloudTrail(String),
    #[error("CloudWatch Logs payload: {0}")]
    Subscription(String),
    /// A record read well but not believed (its time or a number in it).
    #[error("{0}")]
    LeftOut(String),
    #[error("some records lie far outside the times of the rest; they were kept, as standard input cannot be read twice (pass the files instead)")]
    KeptOutliers,
}

/// A problem in one input; the run goes on past it unless `--strict`.
#[derive(Debug, thiserror::Error)]
#[error("{input}{location}: {kind}")]
pub struct ReadError {
    pub input: String,
    pub location: Location,
    #[source]
    pub kind: ReadErrorKind,
}

/// What one input held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub records: u64,
    /// Inputs with nothing in them but white space.
    pub empty: u64,
    /// Insight records and digest files, recognised and left out.
    pub skipped: u64,
    pub problems: u64,
    /// Bytes after decompression.
    pub bytes: u64,
}

impl ReadStats {
    pub fn add(&mut self, other: &ReadStats) {
        self.records += other.records;
        self.empty += other.empty;
        self.skipped += other.skipped;
        self.problems += other.problems;
        self.bytes += other.bytes;
    }
}

struct Ctx<'a, S, P> {
    input: &'a str,
    /// The document a problem is in, 1-based, from the second of an input
    /// holding several (0: not numbered).
    document: usize,
    projection: &'a Projection,
    sink: S,
    report: P,
    stats: ReadStats,
}

impl<'a, S: FnMut(Record<'_>), P: FnMut(ReadError)> Ctx<'a, S, P> {
    fn new(input: &'a str, projection: &'a Projection, sink: S, report: P) -> Self {
        Ctx {
            input,
            document: 0,
            projection,
            sink,
            report,
            stats: ReadStats::default(),
        }
    }

    fn problem(&mut self, location: Location, kind: ReadErrorKind) {
        self.stats.problems += 1;
        let input = match self.document {
            0 => self.input.to_owned(),
            n => format!("{}: document {n}", self.input),
        };
        (self.report)(ReadError {
            input,
            location,
            kind,
        });
    }

    fn event(&mut self, raw: Result<RawRecord<'_>, RecordError>, location: Location) {
        let raw = match raw {
            Ok(raw) => raw.unwrap_envelope(),
            Err(e) => return self.problem(location, e.into()),
        };
        // Insight records have no eventSource of their own: recognise them first.
        if raw.is_insight() {
            self.stats.skipped += 1;
            return;
        }
        match raw.validate() {
            Ok(r) => {
                self.stats.records += 1;
                (self.sink)(r)
            }
            Err(e) => self.problem(location, e.into()),
        }
    }

    /// An event already parsed as a JSON value.
    fn event_value(&mut self, value: &Value, location: Location) {
        self.event(raw_from_value(self.projection, value), location);
    }
}

fn looks_like_event(m: &serde_json::Map<String, Value>) -> bool {
    m.contains_key("eventTime") || m.contains_key("eventVersion") || m.contains_key("detail-type")
}

/// Reads one input. `name` is how problems refer to it (a path, or `<stdin>`).
/// Records are parsed through `projection` (keeping only the fields a run
/// reads; [`Projection::All`] keeps everything). Every record goes to
/// `sink`, every problem to `report`; the returned stats count both.
///
/// The input may hold several documents back to back, gzip members and
/// plain text mixed (`cat *.json *.json.gz | trailwatch detect -`): each is
/// read, and a problem in the second document on names `document N`.
pub fn read_input(
    name: &str,
    reader: impl Read,
    projection: &Projection,
    sink: impl FnMut(Record<'_>),
    report: impl FnMut(ReadError),
) -> ReadStats {
    let mut ctx = Ctx::new(name, projection, sink, report);
    let raw = BufReader::with_capacity(1 << 16, reader);
    read_decoded(&mut ctx, BufReader::with_capacity(1 << 16, Unzip::new(raw)));
    ctx.stats
}

/// Reads an input held whole in memory (a small file): gzip is decompressed
/// straight into one buffer sized from the input, and a delivery is parsed
/// where it lies; anything else gets the same decisions as [`read_input`].
/// Faster than streaming for CloudTrail's deliveries of a few MB; use
/// [`read_input`] for large files.
pub fn read_bytes(
    name: &str,
    bytes: &[u8],
    projection: &Projection,
    sink: impl FnMut(Record<'_>),
    report: impl FnMut(ReadError),
) -> ReadStats {
    let mut ctx = Ctx::new(name, projection, sink, report);
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        if let Some(doc) = parse_in_place(ctx.projection, bytes) {
            ctx.stats.bytes += bytes.len() as u64;
            read_parsed(&mut ctx, doc);
            return ctx.stats;
        }
        read_decoded(&mut ctx, BufReader::new(Unzip::new(bytes)));
        return ctx.stats;
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(10).min(HELD_FREE));
    let mut held = Held::default();
    let result = match decompress(Unzip::new(bytes), &mut out, &mut held) {
        Ok(result) => result,
        Err(kind) => {
            ctx.problem(Location::Whole, kind);
            return ctx.stats;
        }
    };
    match result {
        Ok(_) => match parse_in_place(ctx.projection, &out) {
            Some(doc) => {
                ctx.stats.bytes += out.len() as u64;
                read_parsed(&mut ctx, doc);
            }
            None => read_decoded(&mut ctx, out.as_slice()),
        },
        // Damaged: what decoded before the damage, then the damage, as a
        // stream would meet them.
        Err(e) => read_decoded(
            &mut ctx,
            out.as_slice().chain(BufReader::new(FailsWith(Some(e)))),
        ),
    }
    ctx.stats
}

/// Decompresses all of `reader` into `out`: at most [`MAX_DOCUMENT_BYTES`],
/// and only while `held` covers it. The outer error is the input being too
/// large; the inner one, damage met on the way (what came before is in `out`).
fn decompress(
    mut reader: impl Read,
    out: &mut Vec<u8>,
    held: &mut Held,
) -> Result<io::Result<()>, ReadErrorKind> {
    // Straight into `out`, a few MiB at a time, checking the caps between.
    const STEP: u64 = 4 << 20;
    loop {
        let n = match (&mut reader).take(STEP).read_to_end(out) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        if out.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(ReadErrorKind::TooLarge {
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        if held.cover(out.len()).is_err() {
            return Err(ReadErrorKind::OverBudget { limit: HELD_LIMIT });
        }
        if n == 0 {
            return Ok(Ok(()));
        }
    }
}

/// A reader that fails once with the error it holds, then ends.
struct FailsWith(Option<io::Error>);

impl Read for FailsWith {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.take().map_or(Ok(0), Err)
    }
}

/// A delivery (or array of events) parsed where it lies, as one document;
/// None for anything else (JSON lines, a digest, damaged input), which is
/// read the general way, line by line, with the salvage of damaged input.
fn parse_in_place<'d>(projection: &Projection, bytes: &'d [u8]) -> Option<Document<'d>> {
    match parse_document(projection, bytes) {
        Ok(doc @ (Document::Delivery(_) | Document::Array(_) | Document::BadRecords(_))) => {
            Some(doc)
        }
        _ => None,
    }
}

/// A read error as a problem: damage in a gzip member (the [`Unzip`]
/// decoder's `InvalidData`) or a failing read.
fn io_kind(e: io::Error) -> ReadErrorKind {
    if e.kind() == io::ErrorKind::InvalidData {
        ReadErrorKind::Gzip(e)
    } else {
        ReadErrorKind::Io(e)
    }
}

/// Counts the bytes consumed from a reader: what [`ReadStats::bytes`] reports.
struct Counted<R> {
    inner: R,
    consumed: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

fn read_decoded<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    reader: impl BufRead,
) {
    let mut reader = Counted {
        inner: reader,
        consumed: 0,
    };
    read_counted(ctx, &mut reader);
    ctx.stats.bytes += reader.consumed;
}

fn read_counted<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    mut reader: impl BufRead,
) {
    // The first non-blank line decides between JSON lines and documents.
    let mut first = Vec::new();
    let mut line_no = 0;
    loop {
        first.clear();
        line_no += 1;
        match (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut first)
        {
            Ok(0) => {
                ctx.stats.empty += 1;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                // Damaged before the first line ended: salvage what was decoded.
                if !first.is_empty() {
                    read_document(ctx, &first, true);
                }
                ctx.problem(Location::Byte(first.len()), io_kind(e));
                return;
            }
        }
        if !first.iter().all(u8::is_ascii_whitespace) {
            break;
        }
    }
    let parsed = parse_document(ctx.projection, &first);
    if let Ok(Document::Other(value @ Value::Object(event))) = &parsed {
        if looks_like_event(event) {
            ctx.event_value(value, Location::Line(line_no));
            read_lines(ctx, reader, line_no);
            return;
        }
    }
    match parsed {
        // A one-line document (CloudTrail writes deliveries so): parsed
        // already; more documents may follow.
        Ok(doc) => {
            read_parsed(ctx, doc);
            read_documents(ctx, reader, 2);
        }
        // Part of a document, several on one line, or damage: cut the
        // documents out of the first line and the rest.
        Err(_) => read_documents(ctx, first.as_slice().chain(reader), 1),
    }
}

/// Reads the top-level documents of `reader` one by one, each capped at
/// [`MAX_DOCUMENT_BYTES`]; `number` is the first one's, 1-based.
fn read_documents<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    mut reader: impl BufRead,
    mut number: usize,
) {
    let mut doc = Vec::new();
    let mut held = Held::default();
    loop {
        let end = next_document(
            &mut reader,
            &mut doc,
            MAX_DOCUMENT_BYTES as usize,
            &mut held,
        );
        if !matches!(end, Ok(DocumentEnd::Eof)) && number > 1 {
            ctx.document = number;
        }
        match end {
            Ok(DocumentEnd::Eof) => break,
            Ok(DocumentEnd::Complete) => read_document(ctx, &doc, false),
            // Salvaged record by record, or said to be invalid JSON.
            Ok(DocumentEnd::Truncated) => read_document(ctx, &doc, false),
            Ok(DocumentEnd::TooLarge) => ctx.problem(
                Location::Whole,
                ReadErrorKind::TooLarge {
                    limit: MAX_DOCUMENT_BYTES,
                },
            ),
            Err(e) => {
                // Damage in the stream: keep what was decoded before it.
                if !doc.iter().all(u8::is_ascii_whitespace) {
                    read_document(ctx, &doc, true);
                }
                ctx.problem(Location::Byte(doc.len()), io_kind(e));
                break;
            }
        }
        number += 1;
    }
}

fn read_lines<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    mut reader: impl BufRead,
    mut line_no: usize,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        line_no += 1;
        match (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                ctx.problem(Location::Line(line_no), io_kind(e));
                return;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_record(ctx.projection, &line) {
            Ok(raw) => ctx.event(raw, Location::Line(line_no)),
            Err(e) => ctx.problem(Location::Line(line_no), ReadErrorKind::Json(e)),
        }
    }
}

fn read_document<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    doc: &[u8],
    truncated: bool,
) {
    match parse_document(ctx.projection, doc) {
        Ok(parsed) => read_parsed(ctx, parsed),
        Err(e) => {
            if !salvage_records(ctx, doc) && !truncated {
                ctx.problem(Location::Whole, ReadErrorKind::Json(e));
            }
        }
    }
}

/// Reads a whole parsed document: a delivery, digest, CloudWatch Logs
/// payload, array of events, or one event.
fn read_parsed<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    doc: Document<'_>,
) {
    match doc {
        Document::Delivery(records) | Document::Array(records) => {
            for (i, r) in records.into_iter().enumerate() {
                ctx.event(r, Location::Record(i));
            }
        }
        Document::BadRecords(found) => ctx.problem(
            Location::Whole,
            ReadErrorKind::NotCloudTrail(format!("Records as {found}")),
        ),
        Document::Other(Value::Object(map)) => {
            if map.contains_key("digestStartTime") || map.contains_key("digestEndTime") {
                ctx.stats.skipped += 1;
            } else if let Some(awslogs) = map.get("awslogs") {
                read_awslogs(ctx, awslogs);
            } else if map.contains_key("logEvents") {
                read_log_events(ctx, Value::Object(map));
            } else if looks_like_event(&map) {
                ctx.event_value(&Value::Object(map), Location::Whole);
            } else {
                let keys: Vec<&str> = map.keys().map(String::as_str).take(5).collect();
                ctx.problem(
                    Location::Whole,
                    ReadErrorKind::NotCloudTrail(format!("an object with keys {keys:?}")),
                );
            }
        }
        Document::Other(other) => ctx.problem(
            Location::Whole,
            ReadErrorKind::NotCloudTrail(type_name(&other).to_owned()),
        ),
    }
}

/// Reads a damaged `{"Records":[…]}` one record at a time. Returns false when
/// the input does not even start like a delivery.
fn salvage_records<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    doc: &[u8],
) -> bool {
    let Some(key) = find(doc, b"\"Records\"") else {
        return false;
    };
    let Some(open) = doc[key..].iter().position(|&b| b == b'[') else {
        return false;
    };
    let mut pos = key + open + 1;
    let mut index = 0;
    loop {
        pos += skip_ws(&doc[pos..]);
        match doc.get(pos) {
            None => {
                ctx.problem(
                    Location::Byte(pos),
                    ReadErrorKind::NotCloudTrail("the input ends inside the Records array".into()),
                );
                return true;
            }
            Some(b']') => return true,
            Some(b',') if index > 0 => {
                pos += 1;
                pos += skip_ws(&doc[pos..]);
            }
            Some(_) if index > 0 => {
                ctx.problem(Location::Byte(pos), ReadErrorKind::MissingSeparator)
            }
            Some(_) => {}
        }
        let mut stream = serde_json::Deserializer::from_slice(&doc[pos..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(v)) => {
                ctx.event_value(&v, Location::Record(index));
                pos += stream.byte_offset();
                index += 1;
            }
            Some(Err(e)) => {
                ctx.problem(Location::Record(index), ReadErrorKind::Json(e));
                return true;
            }
            None => return true,
        }
    }
}

fn skip_ws(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_whitespace()).count()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn read_awslogs<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    awslogs: &Value,
) {
    let Some(data) = awslogs.get("data").and_then(Value::as_str) else {
        ctx.problem(
            Location::Whole,
            ReadErrorKind::Subscription("awslogs.data is missing or not a string".into()),
        );
        return;
    };
    match decode_awslogs_data(data) {
        Ok(payload) => read_log_events(ctx, payload),
        Err(msg) => ctx.problem(Location::Whole, ReadErrorKind::Subscription(msg)),
    }
}

/// Decodes `awslogs.data`: base64, then gzip (capped), then JSON.
pub fn decode_awslogs_data(data: &str) -> Result<Value, String> {
    let gz = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("awslogs.data is not base64 ({e})"))?;
    let mut json = Vec::new();
    let mut held = Held::default();
    decompress(MultiGzDecoder::new(gz.as_slice()), &mut json, &mut held)
        .map_err(|too_large| format!("awslogs.data: {too_large}"))?
        .map_err(|e| format!("awslogs.data is not gzip ({e})"))?;
    serde_json::from_slice(&json).map_err(|e| format!("awslogs.data is not JSON ({e})"))
}

/// The records of one CloudTrail delivery (`{"Records": [...]}`, gzipped or
/// not), as JSON, for forwarding by hand: decompression is capped as
/// everywhere else. A file that is not a delivery is an error naming it.
pub fn delivery_records(path: &std::path::Path) -> Result<Vec<Value>, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    delivery_records_in(&name.to_string(), &bytes)
}

/// [`delivery_records`] of a delivery held in memory, named `name`.
pub fn delivery_records_in(name: &str, bytes: &[u8]) -> Result<Vec<Value>, String> {
    let json = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut held = Held::default();
        decompress(MultiGzDecoder::new(bytes), &mut out, &mut held)
            .map_err(|too_large| format!("{name}: {too_large}"))?
            .map_err(|e| format!("{name}: not gzip ({e})"))?;
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(bytes)
    };
    let doc: Value =
        serde_json::from_slice(&json).map_err(|e| format!("{name}: not JSON ({e}); skipped"))?;
    if let Value::Object(mut doc) = doc {
        if let Some(Value::Array(records)) = doc.remove("Records") {
            return Ok(records);
        }
    }
    Err(format!(
        "{name}: no \"Records\" array (not a CloudTrail delivery); skipped"
    ))
}

fn read_log_events<S: FnMut(Record<'_>), P: FnMut(ReadError)>(
    ctx: &mut Ctx<'_, S, P>,
    payload: Value,
) {
    if payload.get("messageType").and_then(Value::as_str) == Some("CONTROL_MESSAGE") {
        ctx.stats.skipped += 1;
        return;
    }
    let Some(Value::Array(events)) = payload.get("logEvents") else {
        ctx.problem(
            Location::Whole,
            ReadErrorKind::Subscription("logEvents is missing or not an array".into()),
        );
        return;
    };
    for (i, event) in events.iter().enumerate() {
        let Some(message) = event.get("message").and_then(Value::as_str) else {
            ctx.problem(
                Location::LogEvent(i),
                ReadErrorKind::Subscription("message is missing or not a string".into()),
            );
            continue;
        };
        match parse_record(ctx.projection, message.as_bytes()) {
            Ok(raw) => ctx.event(raw, Location::LogEvent(i)),
            Err(e) => ctx.problem(Location::LogEvent(i), ReadErrorKind::Json(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use serde_json::json;
    use std::io::Write;

    fn event(i: u32) -> Value {
        json!({"eventTime": format!("2023-07-10T11:{:02}:00Z", i % 60), "eventSource": "ec2.amazonaws.com",
               "eventName": "DescribeInstances", "eventID": format!("id-{i}")})
    }

    fn read(bytes: &[u8]) -> (Vec<Record<'static>>, Vec<String>, ReadStats) {
        let mut records = vec![];
        let mut problems = vec![];
        // Through the projection a run uses: what is reported is the same.
        let projection = Projection::for_records([]);
        let stats = read_input(
            "t",
            bytes,
            &projection,
            |r| records.push(r.into_owned()),
            |e| problems.push(e.to_string()),
        );
        (records, problems, stats)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_delivery_plain_and_gzipped() {
        let doc = serde_json::to_vec(&json!({"Records": [event(1), event(2)]})).unwrap();
        let (r, p, s) = read(&doc);
        assert_eq!((r.len(), p.len(), s.records), (2, 0, 2));
        let (r, p, s) = read(&gzip(&doc));
        assert_eq!((r.len(), p.len()), (2, 0));
        assert_eq!(s.bytes, doc.len() as u64);
    }

    #[test]
    fn json_lines_with_a_bad_line_keep_the_others() {
        let text = format!("{}\n\nnot json\n{}\n", event(1), event(2));
        let (r, p, _) = read(text.as_bytes());
        assert_eq!(r.len(), 2);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("t: line 3: invalid JSON"), "{}", p[0]);
    }

    #[test]
    fn eventbridge_envelopes_are_unwrapped() {
        let line = json!({"detail-type": "AWS API Call via CloudTrail", "detail": event(3)});
        let (r, p, _) = read(format!("{line}\n").as_bytes());
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r[0].event_id(), Some("id-3"));
    }

    #[test]
    fn a_missing_comma_between_records_is_reported_and_both_kept() {
        let text = format!(
            "{{\"Records\": [\n{},\n{}\n{}\n]}}",
            event(1),
            event(2),
            event(3)
        );
        let (r, p, _) = read(text.as_bytes());
        assert_eq!(r.len(), 3);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("byte offset") && p[0].contains("expected ','"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn a_truncated_gzip_keeps_the_records_before_the_cut() {
        let records: Vec<Value> = (0..200).map(event).collect();
        let doc = serde_json::to_vec(&json!({ "Records": records })).unwrap();
        let gz = gzip(&doc);
        let (r, p, _) = read(&gz[..gz.len() / 2]);
        assert!(!r.is_empty() && r.len() < 200, "kept {}", r.len());
        assert!(
            p.iter().any(|m| m.contains("damaged or truncated gzip")),
            "{p:?}"
        );
    }

    #[test]
    fn whole_inputs_in_memory_read_the_same() {
        let records: Vec<Value> = (0..200).map(event).collect();
        let doc = serde_json::to_vec(&json!({ "Records": records })).unwrap();
        let gz = gzip(&doc);
        let mut n = 0;
        let stats = read_bytes("t", &gz, &Projection::All, |_| n += 1, |e| panic!("{e}"));
        assert_eq!(
            (n, stats.records, stats.bytes),
            (200, 200, doc.len() as u64)
        );
        let mut kept = 0;
        let mut problems = vec![];
        read_bytes(
            "t",
            &gz[..gz.len() / 2],
            &Projection::All,
            |_| kept += 1,
            |e| problems.push(e.to_string()),
        );
        assert!(kept > 0 && kept < 200, "kept {kept}");
        assert!(
            problems
                .iter()
                .any(|m| m.contains("damaged or truncated gzip")),
            "{problems:?}"
        );
        let lines = format!("{}\n{}\n", event(1), event(2));
        assert_eq!(
            read_bytes(
                "t",
                lines.as_bytes(),
                &Projection::All,
                |_| {},
                |e| panic!("{e}")
            )
            .records,
            2
        );
    }

    #[test]
    fn in_memory_and_streamed_reads_agree_on_every_shape() {
        let delivery = json!({"Records": [event(1), {"eventSource": "x"}, event(2)]}).to_string();
        let damaged = format!("{{\"Records\": [{},{}\n{}]}}", event(1), event(2), event(3));
        let lines = format!("\n{}\n{{\"eventTime\": 1}}\n{}\n", event(1), event(2));
        let pretty = serde_json::to_string_pretty(&json!([event(1), event(2)])).unwrap();
        let digest = json!({"digestStartTime": "2023-07-10T11:00:00Z"}).to_string();
        let projection = Projection::for_records([]);
        // (input, records, problems, skipped)
        for (input, records, problems, skipped) in [
            (delivery, 2, 1, 0),
            (damaged, 3, 1, 0),
            (lines, 2, 1, 0),
            (pretty, 2, 0, 0),
            (digest, 0, 0, 1),
        ] {
            let gz = gzip(input.as_bytes());
            let run = |in_memory: bool| {
                let (mut ids, mut problems) = (vec![], vec![]);
                let sink = |r: Record<'_>| ids.push(r.event_id().map(str::to_owned));
                let report = |e: ReadError| problems.push(e.to_string());
                let stats = if in_memory {
                    read_bytes("t", &gz, &projection, sink, report)
                } else {
                    read_input("t", gz.as_slice(), &projection, sink, report)
                };
                (ids, problems, stats.records, stats.skipped, stats.bytes)
            };
            let in_memory = run(true);
            assert_eq!(
                (in_memory.2, in_memory.1.len(), in_memory.3),
                (records, problems, skipped),
                "{input}: {in_memory:?}"
            );
            assert_eq!(in_memory, run(false), "{input}");
        }
    }

    /// `cat *.json | trailwatch detect -` read the first delivery and lost the
    /// rest without a word; so did `cat *.json.gz` and a mix of both.
    #[test]
    fn concatenated_documents_and_gzip_members_are_all_read() {
        let a = json!({"Records": [event(1), event(2)]}).to_string();
        let b = json!({"Records": [event(3)]}).to_string();
        let c = json!({"Records": [event(4), event(5), event(6)]}).to_string();
        let glued = format!("{a}{b}{c}");
        let lined = format!("{a}\n{b}\n{c}\n");
        let mut gzipped = gzip(a.as_bytes());
        gzipped.extend(gzip(b.as_bytes()));
        gzipped.extend(gzip(c.as_bytes()));
        let mut mixed = a.clone().into_bytes();
        mixed.extend(gzip(b.as_bytes()));
        mixed.extend_from_slice(b"\n");
        mixed.extend_from_slice(c.as_bytes());
        let mut gz_first = gzip(a.as_bytes());
        gz_first.extend_from_slice(b.as_bytes());
        gz_first.extend(gzip(c.as_bytes()));
        for (what, input) in [
            ("glued", glued.into_bytes()),
            ("lined", lined.into_bytes()),
            ("gzipped", gzipped),
            ("mixed", mixed),
            ("gzip first", gz_first),
        ] {
            let (r, p, s) = read(&input);
            assert_eq!((r.len(), s.records), (6, 6), "{what}");
            assert!(p.is_empty(), "{what}: {p:?}");
            let ids: Vec<_> = r.iter().map(|r| r.event_id().unwrap().to_owned()).collect();
            assert_eq!(
                ids,
                ["id-1", "id-2", "id-3", "id-4", "id-5", "id-6"],
                "{what}"
            );
            let mut n = 0;
            let stats = read_bytes(
                "t",
                &input,
                &Projection::All,
                |_| n += 1,
                |e| panic!("{what}: {e}"),
            );
            assert_eq!((n, stats.records), (6, 6), "{what}, in memory");
        }
    }

    #[test]
    fn a_damaged_document_among_several_is_named_and_the_others_kept() {
        let a = json!({"Records": [event(1)]}).to_string();
        let c = json!({"Records": [event(4)]}).to_string();
        let damaged = format!("{{\"Records\": [{}\n{}]}}", event(2), event(3));
        let (r, p, _) = read(format!("{a}\n{damaged}\n{c}").as_bytes());
        assert_eq!(r.len(), 4, "{p:?}");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("t: document 2: byte offset"), "{}", p[0]);
        let (r, p, _) = read(format!("{a}{}", &c[..c.len() - 2]).as_bytes());
        assert_eq!(
            r.len(),
            2,
            "the truncated delivery's record is salvaged: {p:?}"
        );
        assert!(p.iter().any(|m| m.starts_with("t: document 2: ")), "{p:?}");
    }

    #[test]
    fn bad_records_are_named_by_index() {
        let doc = json!({"Records": [event(1), {"eventSource": "x", "eventName": "y"}, event(2)]});
        let (r, p, _) = read(doc.to_string().as_bytes());
        assert_eq!(r.len(), 2);
        assert_eq!(
            p,
            vec!["t: record 1: invalid record: no eventTime: every CloudTrail record needs one"]
        );
    }

    #[test]
    fn digests_insights_and_control_messages_are_skipped() {
        let digest = json!({"awsAccountId": "1", "digestStartTime": "2023-07-10T11:00:00Z"});
        let (r, p, s) = read(digest.to_string().as_bytes());
        assert_eq!((r.len(), p.len(), s.skipped), (0, 0, 1));
        let mut insight = event(1);
        insight["eventType"] = json!("AwsCloudTrailInsight");
        let (r, _, s) = read(
            json!({"Records": [insight, event(2)]})
                .to_string()
                .as_bytes(),
        );
        assert_eq!((r.len(), s.skipped), (1, 1));
        let control = json!({"messageType": "CONTROL_MESSAGE", "logEvents": []});
        let (_, p, s) = read(control.to_string().as_bytes());
        assert_eq!((p.len(), s.skipped), (0, 1));
    }

    #[test]
    fn cloudwatch_subscription_payloads_are_decoded() {
        let payload = json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
            "subscriptionFilters": ["f"], "logEvents": [
                {"id": "1", "timestamp": 0, "message": event(1).to_string()},
                {"id": "2", "timestamp": 0, "message": "{broken"}]});
        let data =
            base64::engine::general_purpose::STANDARD.encode(gzip(payload.to_string().as_bytes()));
        let (r, p, _) = read(json!({"awslogs": {"data": data}}).to_string().as_bytes());
        assert_eq!(r.len(), 1);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("t: logEvents[1]: invalid JSON"),
            "{}",
            p[0]
        );
        let (_, p, _) = read(json!({"awslogs": {"data": "%%%"}}).to_string().as_bytes());
        assert!(p[0].contains("not base64"), "{p:?}");
    }

    #[test]
    fn something_else_is_not_cloudtrail() {
        let (_, p, _) = read(b"{\"hello\": 1}");
        assert!(p[0].contains("not CloudTrail"), "{p:?}");
        let (_, p, s) = read(b" \n\n");
        assert!(
            p.is_empty(),
            "an empty input is counted, not a problem: {p:?}"
        );
        assert_eq!(s.empty, 1);
        let (_, p, _) = read(b"{\"a\": ");
        assert!(p[0].contains("invalid JSON"), "{p:?}");
    }
}

//! Reading CloudTrail: the record model, field paths into records, the input
//! formats (S3 deliveries, JSON lines, CloudWatch Logs subscription payloads),
//! finding inputs on disk or in a trail bucket ([`s3`]), and reporting damaged
//! input without stopping.
//!
//! A byte stream is first cut into gzip members and documents ([`stream`]).
//! Records are parsed straight into the typed model ([`parse`]), keeping
//! only the fields a run reads ([`Projection`]).
//!
//! The reader is streaming and callback-based: [`read::read_input`] hands each
//! valid [`Record`] to a sink and each problem to a reporter, so callers decide
//! whether a problem is fatal (`--strict`) and what to do with records.

pub mod discover;
pub mod field;
pub mod parse;
pub mod projection;
pub mod read;
pub mod record;
pub mod s3;
pub(crate) mod schema;
pub mod stream;

pub use discover::{discover, Input, SearchInput};
pub use field::FieldPath;
pub use projection::Projection;
pub use read::{read_bytes, read_input, Location, ReadError, ReadErrorKind, ReadStats};
pub use record::{
    quantity, service_linked_role, FieldValue, Implausible, Record, RecordError, UserIdentity,
    MAX_QUANTITY,
};

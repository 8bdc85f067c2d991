//! The record's schema: which CloudTrail fields are typed, and the slot
//! each lives in. The record model ([`super::record`]), the parser
//! ([`super::parse`]) and field paths ([`super::field`]) all read it, so
//! none of them depends on another for it.

/// The typed top-level string fields, in [`Record`](super::record::Record)'s slot order.
pub(crate) const STRING_FIELDS: [&str; 12] = [
    "eventTime",
    "eventVersion",
    "eventSource",
    "eventName",
    "awsRegion",
    "recipientAccountId",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "eventType",
    "eventID",
    "eventCategory",
];
/// The typed `userIdentity` fields, in slot order.
pub(crate) const IDENTITY_FIELDS: [&str; 7] = [
    "type",
    "arn",
    "accountId",
    "invokedBy",
    "principalId",
    "userName",
    "accessKeyId",
];
/// The typed boolean fields, in slot order.
pub(crate) const BOOL_FIELDS: [&str; 2] = ["readOnly", "managementEvent"];

/// Slots of [`STRING_FIELDS`].
pub(crate) const EVENT_TIME: usize = 0;
pub(crate) const EVENT_SOURCE: usize = 2;
pub(crate) const EVENT_NAME: usize = 3;
pub(crate) const AWS_REGION: usize = 4;
pub(crate) const RECIPIENT_ACCOUNT_ID: usize = 5;
pub(crate) const SOURCE_IP_ADDRESS: usize = 6;
pub(crate) const USER_AGENT: usize = 7;
pub(crate) const ERROR_CODE: usize = 8;
pub(crate) const EVENT_TYPE: usize = 9;
pub(crate) const EVENT_ID: usize = 10;
pub(crate) const EVENT_CATEGORY: usize = 11;

/// Where a field path's value lives when it is a typed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    String(usize),
    Identity(usize),
    Bool(usize),
}

impl Slot {
    /// The typed slot of a path, if it names a typed field.
    pub(crate) fn of(segments: &[String]) -> Option<Slot> {
        let position = |names: &[&str], name: &str| names.iter().position(|n| *n == name);
        match segments {
            [one] => position(&STRING_FIELDS, one)
                .map(Slot::String)
                .or_else(|| position(&BOOL_FIELDS, one).map(Slot::Bool)),
            [first, second] if first == "userIdentity" => {
                position(&IDENTITY_FIELDS, second).map(Slot::Identity)
            }
            _ => None,
        }
    }
}

//! The Lambda handlers' pure cores. The forwarder ([`forwarder`]) turns a
//! CloudWatch Logs subscription batch into OpenSearch `_bulk` requests and
//! decides, item by item, what is done, what to retry and what can never be
//! indexed. The network client, the retry loop and the Lambda runtime wrap
//! these functions (issue 5).

pub mod forwarder;

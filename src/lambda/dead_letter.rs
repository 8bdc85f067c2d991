//! Dead letters: what can never be indexed, kept with the reason. In AWS
//! they go to the stack's SQS queue; run locally, to an NDJSON file.

use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// SQS refuses messages over 256 KiB; leave room for the envelope.
const SQS_MESSAGE_LIMIT: usize = 240 * 1024;

/// One record that can never be indexed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Letter {
    pub reason: String,
    pub log_group: String,
    pub log_stream: String,
    pub log_event_id: String,
    /// The index and id it was meant for, when it got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The log event's message as CloudWatch Logs delivered it.
    pub message: String,
    /// Set when the message was cut to fit the destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_bytes: Option<usize>,
}

impl Letter {
    /// The letter as JSON no longer than `limit` bytes: the message is cut
    /// (at a character boundary) and its full length noted when needed.
    pub fn to_json_within(&self, limit: usize) -> String {
        let text = serde_json::to_string(self).expect("a letter serializes");
        if text.len() <= limit {
            return text;
        }
        let mut cut = self.clone();
        cut.original_bytes = Some(self.message.len());
        let over = text.len() - limit + 64;
        let mut keep = self.message.len().saturating_sub(over);
        while !self.message.is_char_boundary(keep) {
            keep -= 1;
        }
        cut.message.truncate(keep);
        serde_json::to_string(&cut).expect("a letter serializes")
    }
}

/// A dead-letter destination that could not take a letter.
#[derive(Debug, thiserror::Error)]
#[error("cannot dead-letter to {destination}: {message}")]
pub struct DeadLetterError {
    pub destination: String,
    pub message: String,
}

/// Where dead letters go.
pub enum DeadLetters {
    Sqs {
        client: aws_sdk_sqs::Client,
        queue_url: String,
    },
    /// Appended, one JSON object a line.
    File(PathBuf),
}

impl DeadLetters {
    pub fn describe(&self) -> String {
        match self {
            DeadLetters::Sqs { queue_url, .. } => queue_url.clone(),
            DeadLetters::File(path) => path.display().to_string(),
        }
    }

    /// Sends every letter, or says which destination failed.
    pub async fn send(&self, letters: &[Letter]) -> Result<(), DeadLetterError> {
        if letters.is_empty() {
            return Ok(());
        }
        let failed = |message: String| DeadLetterError {
            destination: self.describe(),
            message,
        };
        match self {
            DeadLetters::Sqs { client, queue_url } => {
                for letter in letters {
                    client
                        .send_message()
                        .queue_url(queue_url)
                        .message_body(letter.to_json_within(SQS_MESSAGE_LIMIT))
                        .send()
                        .await
                        .map_err(|e| failed(crate::aws::error_message(&e)))?;
                }
                Ok(())
            }
            DeadLetters::File(path) => {
                append_json_lines(path, letters).map_err(|e| failed(e.to_string()))
            }
        }
    }
}

/// Appends `items` to the file at `path` (made if missing), one JSON line
/// each, in one write: the local form of the Lambdas' queues and topics.
pub fn append_json_lines<T: serde::Serialize>(
    path: &std::path::Path,
    items: &[T],
) -> std::io::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(message: &str) -> Letter {
        Letter {
            reason: "400 mapper_parsing_exception: failed to parse".into(),
            log_group: "/tw/cloudtrail".into(),
            log_stream: "s".into(),
            log_event_id: "1".into(),
            index: Some("cwl-2026.01.05".into()),
            id: Some("e-1".into()),
            message: message.into(),
            original_bytes: None,
        }
    }

    #[test]
    fn a_letter_too_large_for_the_queue_is_cut_and_says_so() {
        let small = letter("{\"eventID\":\"e-1\"}");
        assert_eq!(
            small.to_json_within(1000),
            serde_json::to_string(&small).unwrap()
        );

        let big = letter(&"é".repeat(2000));
        let text = big.to_json_within(1000);
        assert!(text.len() <= 1000, "{}", text.len());
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["original_bytes"], 4000);
        assert_eq!(back["reason"], big.reason);
    }

    #[test]
    fn file_letters_are_appended_one_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let sink = DeadLetters::File(path.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(sink.send(&[letter("a")])).unwrap();
        rt.block_on(sink.send(&[letter("b"), letter("c")])).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let messages: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["message"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(messages, ["a", "b", "c"]);
    }
}

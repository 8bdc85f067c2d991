//! The notification an existing trail bucket (`--trail-bucket`) sends the
//! engine's queue. CloudFormation cannot change a bucket it did not make,
//! so deploy does it: S3 keeps one notification configuration per bucket
//! and refuses two destinations for overlapping events and keys, so the
//! configuration is read first. One that already names the queue is left
//! alone; otherwise the queue is added beside what is there; and a bucket
//! that sends `s3:ObjectCreated:*` for the trail's keys somewhere else is
//! refused before anything is made.

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};

/// The keys of the deliveries the engine reads.
pub const PREFIX: &str = "AWSLogs/";
pub const SUFFIX: &str = ".json.gz";
/// The events the engine is sent.
pub const EVENT: &str = "s3:ObjectCreated:*";

/// One destination a bucket notifies, as far as overlap goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// A queue's, topic's or function's ARN.
    pub arn: String,
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

impl Destination {
    /// It is sent the object-created events of some delivery: S3 would
    /// refuse the engine's queue beside it.
    fn overlaps_the_engine(&self) -> bool {
        let events = self
            .events
            .iter()
            .any(|e| e.starts_with("s3:ObjectCreated:"));
        let prefix = self.prefix.starts_with(PREFIX) || PREFIX.starts_with(&self.prefix);
        let suffix = self.suffix.ends_with(SUFFIX) || SUFFIX.ends_with(&self.suffix);
        events && prefix && suffix
    }

    /// Exactly the engine's notification, to this queue.
    fn is_the_engines(&self, queue_arn: &str) -> bool {
        self.arn == queue_arn
            && self.events == [EVENT]
            && self.prefix == PREFIX
            && self.suffix == SUFFIX
    }
}

/// What the bucket's configuration needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needed {
    /// It already notifies the queue.
    Nothing,
    /// The queue is to be added beside what is there.
    AddQueue,
}

/// Why the bucket cannot notify the engine, or could not be read or set.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("--trail-bucket {bucket}: it already sends {events} for {keys} to {destination}, and S3 allows one destination for the same events and keys; remove that notification (or point it at an SNS topic and subscribe the engine queue {prefix}-deliveries to it by hand), then deploy again. Nothing was changed.")]
    Taken {
        bucket: String,
        prefix: String,
        events: String,
        keys: String,
        destination: String,
    },
    #[error("--trail-bucket {bucket}: cannot read its notifications: {message}. The bucket must be in this account and region, and the deploying role needs s3:GetBucketNotification on it.")]
    Read { bucket: String, message: String },
    #[error("--trail-bucket {bucket}: cannot add the engine queue to its notifications: {message}. The stack is deployed; run deploy again once s3:PutBucketNotification is allowed.")]
    Write { bucket: String, message: String },
}

/// The engine queue's ARN, from the name the template gives it.
pub fn engine_queue_arn(account: &str, region: &str, prefix: &str) -> String {
    let partition = match region {
        r if r.starts_with("cn-") => "aws-cn",
        r if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    };
    format!("arn:{partition}:sqs:{region}:{account}:{prefix}-deliveries")
}

/// What `existing` needs for the engine's queue, or the destination that
/// takes its place.
pub fn needed<'a>(existing: &'a [Destination], queue_arn: &str) -> Result<Needed, &'a Destination> {
    let ours = |d: &Destination| d.is_the_engines(queue_arn);
    if existing.iter().any(ours) {
        return Ok(Needed::Nothing);
    }
    match existing.iter().find(|d| d.overlaps_the_engine()) {
        Some(other) => Err(other),
        None => Ok(Needed::AddQueue),
    }
}

fn filter_of(f: Option<&NotificationConfigurationFilter>) -> (String, String) {
    let (mut prefix, mut suffix) = (String::new(), String::new());
    let rules = f.and_then(|f| f.key()).map(|k| k.filter_rules());
    for rule in rules.unwrap_or_default() {
        let value = rule.value().unwrap_or_default().to_owned();
        match rule.name() {
            Some(FilterRuleName::Prefix) => prefix = value,
            Some(FilterRuleName::Suffix) => suffix = value,
            _ => {}
        }
    }
    (prefix, suffix)
}

/// The destinations of a bucket's configuration.
pub fn destinations(c: &NotificationConfiguration) -> Vec<Destination> {
    let destination = |arn: &str, events: &[Event], filter| {
        let (prefix, suffix) = filter_of(filter);
        Destination {
            arn: arn.to_owned(),
            events: events.iter().map(|e| e.as_str().to_owned()).collect(),
            prefix,
            suffix,
        }
    };
    let queues = (c.queue_configurations().iter())
        .map(|q| destination(q.queue_arn(), q.events(), q.filter()));
    let topics = (c.topic_configurations().iter())
        .map(|t| destination(t.topic_arn(), t.events(), t.filter()));
    let functions = (c.lambda_function_configurations().iter())
        .map(|l| destination(l.lambda_function_arn(), l.events(), l.filter()));
    queues.chain(topics).chain(functions).collect()
}

/// The engine's queue configuration.
fn engine_queue(queue_arn: &str) -> QueueConfiguration {
    let rule = |name, value: &str| FilterRule::builder().name(name).value(value).build();
    let key = S3KeyFilter::builder()
        .filter_rules(rule(FilterRuleName::Prefix, PREFIX))
        .filter_rules(rule(FilterRuleName::Suffix, SUFFIX))
        .build();
    QueueConfiguration::builder()
        .id("trailwatch-engine")
        .queue_arn(queue_arn)
        .events(Event::from(EVENT))
        .filter(NotificationConfigurationFilter::builder().key(key).build())
        .build()
        .expect("the queue ARN and event are set")
}

/// `bucket`'s notification configuration, as it is.
async fn read(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<NotificationConfiguration, NotificationError> {
    let read = s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| NotificationError::Read {
            bucket: bucket.to_owned(),
            message: crate::aws::error_message(&e),
        })?;
    Ok(NotificationConfiguration::builder()
        .set_queue_configurations(read.queue_configurations)
        .set_topic_configurations(read.topic_configurations)
        .set_lambda_function_configurations(read.lambda_function_configurations)
        .set_event_bridge_configuration(read.event_bridge_configuration)
        .build())
}

/// Writes `bucket`'s configuration: `current` with its queues replaced by
/// `queues`, the rest kept.
async fn write_queues(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    current: NotificationConfiguration,
    queues: Vec<QueueConfiguration>,
) -> Result<(), NotificationError> {
    let wanted = NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues))
        .set_topic_configurations(current.topic_configurations)
        .set_lambda_function_configurations(current.lambda_function_configurations)
        .set_event_bridge_configuration(current.event_bridge_configuration)
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(wanted)
        .send()
        .await
        .map_err(|e| NotificationError::Write {
            bucket: bucket.to_owned(),
            message: crate::aws::error_message(&e),
        })?;
    Ok(())
}

/// Reads `bucket`'s notifications and refuses one that sends the trail's
/// deliveries elsewhere; with `add`, adds the engine's queue when it is
/// not there (without, only checks that it could be). True when it was
/// added.
pub async fn ensure(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    queue_arn: &str,
    add: bool,
) -> Result<bool, NotificationError> {
    let current = read(s3, bucket).await?;
    match needed(&destinations(&current), queue_arn) {
        Err(other) => Err(NotificationError::Taken {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            events: other.events.join(", "),
            keys: match (other.prefix.as_str(), other.suffix.as_str()) {
                ("", "") => "every key".to_owned(),
                (p, s) => format!("keys {p}*{s}"),
            },
            destination: other.arn.clone(),
        }),
        Ok(Needed::Nothing) => Ok(false),
        Ok(Needed::AddQueue) if !add => Ok(false),
        Ok(Needed::AddQueue) => {
            let mut queues = current.queue_configurations().to_vec();
            queues.push(engine_queue(queue_arn));
            write_queues(s3, bucket, current, queues).await?;
            Ok(true)
        }
    }
}

/// Takes the engine's queue out of `bucket`'s notifications, keeping the
/// rest (`destroy`, for a bucket the stack did not make). True when it was
/// there.
pub async fn remove(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    queue_arn: &str,
) -> Result<bool, NotificationError> {
    let current = read(s3, bucket).await?;
    let mut queues = current.queue_configurations().to_vec();
    let before = queues.len();
    queues.retain(|q| q.queue_arn() != queue_arn);
    if queues.len() == before {
        return Ok(false);
    }
    write_queues(s3, bucket, current, queues).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "arn:aws:sqs:eu-west-1:123456789012:trailwatch-deliveries";

    fn dest(arn: &str, events: &[&str], prefix: &str, suffix: &str) -> Destination {
        Destination {
            arn: arn.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    /// A destination sent the deliveries' object-created events takes the
    /// engine's place; one sent other events or other keys does not, and
    /// the engine's own notification is left alone.
    #[test]
    fn another_destination_for_the_deliveries_is_refused_and_others_are_kept() {
        assert_eq!(needed(&[], QUEUE), Ok(Needed::AddQueue));
        let ours = [dest(QUEUE, &[EVENT], PREFIX, SUFFIX)];
        assert_eq!(needed(&ours, QUEUE), Ok(Needed::Nothing));
        assert_eq!(
            engine_queue_arn("123456789012", "eu-west-1", "trailwatch"),
            QUEUE
        );
        assert!(engine_queue_arn("1", "cn-north-1", "p").starts_with("arn:aws-cn:sqs:"));
        let unrelated = [
            dest("arn:aws:sns:x", &["s3:ObjectRemoved:*"], "", ""),
            dest("arn:aws:sns:y", &["s3:ObjectCreated:*"], "exports/", ""),
            dest("arn:aws:sns:z", &["s3:ObjectCreated:Put"], "", ".csv"),
        ];
        assert_eq!(needed(&unrelated, QUEUE), Ok(Needed::AddQueue));
        for taking in [
            dest("arn:aws:lambda:f", &["s3:ObjectCreated:*"], "", ""),
            dest(
                "arn:aws:sqs:q",
                &["s3:ObjectCreated:Put"],
                "AWSLogs/o-abc/",
                "",
            ),
            dest("arn:aws:sns:t", &["s3:ObjectCreated:Post"], "AWS", ".gz"),
            // The engine's queue, but for fewer events: S3 would refuse a second.
            dest(QUEUE, &["s3:ObjectCreated:Put"], PREFIX, SUFFIX),
        ] {
            let list = [unrelated[0].clone(), taking.clone()];
            assert_eq!(needed(&list, QUEUE), Err(&taking), "{taking:?}");
        }
    }
}

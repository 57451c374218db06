//! One topic, several services subscribed to it, and the servers behind
//! them (a `moto_server` and three `redis-server`s), for the end-to-end tests
//! that run `iniesta consume` per service. A service locks on the Redis
//! servers, or in a DynamoDB table on the same `moto_server`
//! ([`Service::with_dynamodb`]; [`World::start_without_redis`] then spares
//! the Redis servers).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use aws_sdk_sqs::operation::send_message::builders::SendMessageFluentBuilder;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use iniesta_aws::{AwsClients, SnsTopic};
use iniesta_core::publish::envelope_json;
use iniesta_core::publish::event_message;
use iniesta_core::{AttributeValue, Topic};
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tests::servers::redis::RedisCluster;
use serde_json::Value;

use super::{run, Consumer};

/// The message attribute naming the event (the default).
pub const EVENT_KEY: &str = "iniesta_pass";
/// How long a test waits for its consumers to finish the work; a healthy
/// run needs a few seconds.
pub const SETTLE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Servers and resources

/// A moto_server, three redis-servers and the topic every service of the
/// test subscribes to.
pub struct World {
    pub moto: MotoServer,
    pub redis: RedisCluster,
    pub clients: AwsClients,
    pub topic: String,
    pub rt: tokio::runtime::Runtime,
}

/// Visible and in-flight messages of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub visible: u64,
    pub in_flight: u64,
}

impl Counts {
    pub fn total(self) -> u64 {
        self.visible + self.in_flight
    }
}

impl World {
    /// `None` when the servers are not installed (outside CI; the reason was
    /// printed).
    pub fn start(name: &str) -> Option<World> {
        let redis = RedisCluster::start(3)?;
        let moto = MotoServer::start()?;
        let clients = moto.clients();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Some(World {
            moto,
            redis,
            clients,
            topic: format!("events-{name}"),
            rt,
        })
    }

    /// A world without Redis servers, for services that lock in DynamoDB
    /// ([`Service::with_dynamodb`]): only `moto_server` has to be installed.
    /// `None` when it is not (outside CI; the reason was printed).
    pub fn start_without_redis(name: &str) -> Option<World> {
        // No servers asked for: nothing to start, nothing to skip for.
        let redis = RedisCluster::start(0)?;
        let moto = MotoServer::start()?;
        let clients = moto.clients();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Some(World {
            moto,
            redis,
            clients,
            topic: format!("events-{name}"),
            rt,
        })
    }

    pub fn topic_arn(&self) -> String {
        MotoServer::topic_arn(&self.topic)
    }

    /// A service with its own queue and filters, on this world's topic and
    /// lock servers.
    pub fn service(&self, queue: &str, name: &str, filters: &str) -> Service<'_> {
        Service {
            world: self,
            queue: queue.to_owned(),
            name: name.to_owned(),
            filters: filters.to_owned(),
            lock: LockChoice::Redlock,
        }
    }

    /// Publishes `(event, body)` pairs to the topic in the original wire
    /// format, event names as given; returns the SNS message ids in order.
    pub fn publish(&self, events: &[(&str, String)]) -> Vec<String> {
        let topic = SnsTopic::new(self.clients.sns.clone(), self.topic_arn());
        let messages: Vec<_> = events
            .iter()
            .map(|(event, body)| event_message(EVENT_KEY, event, body.clone(), 1).unwrap())
            .collect();
        self.rt
            .block_on(topic.publish_batch(messages))
            .into_iter()
            .map(|r| r.expect("publish to the topic"))
            .collect()
    }

    pub fn queue_url(&self, name: &str) -> String {
        self.rt
            .block_on(iniesta_aws::resolve_queue_url(&self.clients.sqs, name))
            .unwrap_or_else(|e| panic!("queue {name} exists: {e}"))
    }

    pub fn counts(&self, url: &str) -> Counts {
        let out = self
            .rt
            .block_on(
                self.clients
                    .sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .expect("GetQueueAttributes");
        let attrs = out.attributes().cloned().unwrap_or_default();
        let number = |name: QueueAttributeName| {
            attrs
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name:?} of {url}: {attrs:?}"))
        };
        Counts {
            visible: number(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        }
    }

    /// Sends a message straight to the queue, the event named by a message
    /// attribute (as raw delivery brings it); returns its SQS message id.
    pub fn send_raw(&self, url: &str, event: &str, body: &str) -> String {
        let attribute = |kind: &str, value: &str| {
            MessageAttributeValue::builder()
                .data_type(kind)
                .string_value(value)
                .build()
                .expect("a message attribute")
        };
        self.send(
            self.clients
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(body)
                .message_attributes(EVENT_KEY, attribute("String", event))
                .message_attributes("version", attribute("Number", "1")),
        )
    }

    /// Sends an SNS notification envelope from this world's topic straight
    /// to the queue; returns its SQS message id.
    pub fn send_envelope(
        &self,
        url: &str,
        sns_message_id: &str,
        event: &str,
        body: &str,
    ) -> String {
        let attributes = BTreeMap::from([
            (
                EVENT_KEY.to_owned(),
                AttributeValue::String(event.to_owned()),
            ),
            ("version".to_owned(), AttributeValue::Number("1".to_owned())),
        ]);
        let envelope = envelope_json(&self.topic_arn(), sns_message_id, body, &attributes);
        self.send(
            self.clients
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(envelope),
        )
    }

    /// Sends `request`; returns the SQS message id.
    fn send(&self, request: SendMessageFluentBuilder) -> String {
        self.rt
            .block_on(request.send())
            .expect("SendMessage")
            .message_id()
            .expect("a message id")
            .to_owned()
    }

    /// The SQS message ids one receive (1 s long poll) gets from the queue.
    pub fn receive_ids(&self, url: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.clients
                    .sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send(),
            )
            .expect("ReceiveMessage");
        out.messages()
            .iter()
            .filter_map(|m| m.message_id().map(str::to_owned))
            .collect()
    }
}

/// Where a service's consumers keep their locks and completion records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockChoice {
    /// A Redlock over the world's Redis servers (the default).
    Redlock,
    /// The DynamoDB table `table` on the world's `moto_server`, which serves
    /// DynamoDB on the same port as SQS and SNS.
    DynamoDb { table: String },
}

/// One service: its queue, name, filters and lock backend.
pub struct Service<'a> {
    pub world: &'a World,
    pub queue: String,
    pub name: String,
    pub filters: String,
    pub lock: LockChoice,
}

impl<'a> Service<'a> {
    /// The service locking in the DynamoDB table `table` instead
    /// (`INIESTA_LOCK_BACKEND=dynamodb`; `provision` creates the table).
    /// `INIESTA_CACHES` then names a port nothing listens on, so a consumer
    /// that reached for Redis would fail instead of passing unnoticed.
    pub fn with_dynamodb(self, table: &str) -> Service<'a> {
        Service {
            lock: LockChoice::DynamoDb {
                table: table.to_owned(),
            },
            ..self
        }
    }
}

impl Service<'_> {
    /// `iniesta ARGS` configured for this service: the endpoint by flag, the
    /// rest by the environment. The lock servers are the world's, the same
    /// for every service: its Redis servers, or with
    /// [`with_dynamodb`](Service::with_dynamodb) its `moto_server`.
    pub fn iniesta(&self, args: &[&str]) -> Command {
        let world = self.world;
        let mut cmd = super::iniesta();
        cmd.args(args)
            .args(["--endpoint-url", &world.moto.endpoint()])
            .envs(MotoServer::CHILD_ENV)
            .env("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN", world.topic_arn())
            .env("INIESTA_SQS_CONSUMER_FILTERS", &self.filters)
            .env("INIESTA_SQS_QUEUE_NAME", &self.queue)
            .env("SERVICE_NAME", &self.name)
            .env("INIESTA_CACHES", world.redis.urls().join(","))
            .env("INIESTA_LOCK_TIMEOUT", "2")
            .env("INIESTA_SQS_RECEIVE_MESSAGE_WAIT_TIME_SECONDS", "1")
            .env("INIESTA_SHUTDOWN_GRACE", "30");
        if let LockChoice::DynamoDb { table } = &self.lock {
            cmd.env("INIESTA_LOCK_BACKEND", "dynamodb")
                .env("INIESTA_DYNAMODB_TABLE", table)
                .env("INIESTA_DYNAMODB_ENDPOINT_URL", world.moto.endpoint())
                .env("INIESTA_CACHES", "redis://127.0.0.1:1/0");
        }
        cmd
    }

    /// `iniesta provision ARGS`; returns what it printed.
    pub fn provision(&self, args: &[&str]) -> String {
        let mut all = vec!["provision"];
        all.extend_from_slice(args);
        let r = run(self.iniesta(&all));
        assert_eq!(
            r.code(),
            Some(0),
            "provision of {} failed: {r:?}",
            self.queue
        );
        r.stdout
    }

    /// Starts `iniesta consume ARGS` with `env` on top of the service's
    /// settings, and waits until it polls.
    pub fn consume(&self, label: &'static str, args: &[&str], env: &[(&str, &str)]) -> Consumer {
        let mut all = vec!["consume"];
        all.extend_from_slice(args);
        let mut cmd = self.iniesta(&all);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let mut consumer = Consumer::start(label, cmd);
        consumer.wait_stderr("consuming");
        consumer
    }

    pub fn url(&self) -> String {
        self.world.queue_url(&self.queue)
    }
}

/// The SNS message id of every handled line.
pub fn sns_ids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l["sns_message_id"]
                .as_str()
                .unwrap_or_else(|| panic!("handled line without an SNS message id: {l}"))
                .to_owned()
        })
        .collect()
}

/// How often each SNS message id appears among `lines`.
pub fn id_counts(lines: &[Value]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for id in sns_ids(lines) {
        *count.entry(id).or_default() += 1;
    }
    count
}

/// The stderr lines that report a message as outside the consumer's
/// filters: they say "filter" and name the message by one of `names` (its
/// message id, key or event).
pub fn filter_reports(consumer: &Consumer, names: &[&str]) -> Vec<String> {
    consumer.stderr_lines(|line| {
        line.to_ascii_lowercase().contains("filter") && names.iter().any(|n| line.contains(n))
    })
}

/// A message id in the form SNS gives (a UUID), unique to this process and
/// `n`, for envelopes written straight to a queue.
pub fn sns_like_id(n: u16) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        std::process::id(),
        n,
        (nanos >> 48) & 0xfff,
        (nanos >> 36) & 0xfff,
        nanos & 0xffff_ffff_ffff
    )
}

/// Handled lines, one per line of text.
pub fn show(lines: &[Value]) -> String {
    lines
        .iter()
        .map(|l| format!("\n    {l}"))
        .collect::<String>()
}

/// At most five of `items`, and how many more there are.
pub fn some<T: std::fmt::Debug>(items: &[T]) -> String {
    match items.len() {
        0..=5 => format!("{items:?}"),
        n => format!("{:?} and {} more", &items[..5], n - 5),
    }
}

/// The consumer's summary line (printed when it stops), or a note that it
/// printed none.
pub fn summary(consumer: &Consumer) -> String {
    consumer
        .stderr_lines(|l| l.contains("stopped; received"))
        .pop()
        .unwrap_or_else(|| format!("{}: no summary", consumer.name))
}

/// A counter of the consumer's summary line, e.g. `unmatched` in
/// `..., unmatched 2, ...`.
pub fn summary_count(consumer: &Consumer, counter: &str) -> Option<u64> {
    let line = summary(consumer);
    let (_, rest) = line.split_once(&format!(" {counter} "))?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

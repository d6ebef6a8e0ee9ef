//! SQS queues read the way the tests need them: a queue subscribed to an SNS topic (as a subscriber of the
//! findings topic sees each message), and a queue drained as the SQS event source hands records to the
//! function.

use aws_sdk_sqs::types::{Message, QueueAttributeName};
use serde_json::{json, Value};

/// An SQS queue on the emulator.
pub struct Queue {
    pub url: String,
    pub arn: String,
    sqs: aws_sdk_sqs::Client,
}

impl Queue {
    /// This queue as the function's re-check queue (60 s delay, 5 attempts).
    pub fn as_recheck(&self) -> eks_warden::handler::RecheckQueue {
        eks_warden::handler::RecheckQueue {
            url: self.url.clone(),
            delay_seconds: 60,
            max_attempts: 5,
        }
    }

    pub async fn create(conf: &aws_config::SdkConfig, name: &str) -> Queue {
        let sqs = aws_sdk_sqs::Client::new(conf);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let arn = attrs.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
        Queue { url, arn, sqs }
    }

    /// Every message the queue holds now, each deleted once read (the emulator delivers synchronously,
    /// so what was sent before the call is all there).
    pub async fn drain(&self) -> Vec<Message> {
        let mut out = vec![];
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                out.push(m.clone());
            }
        }
    }

    /// Every message the queue holds now, as the SQS event source would hand it to the function.
    pub async fn records(&self) -> Vec<Value> {
        self.drain()
            .await
            .iter()
            .map(|m| json!({"messageId": m.message_id().unwrap(), "eventSource": "aws:sqs", "body": m.body().unwrap()}))
            .collect()
    }
}

/// One message as a queue subscribed to the topic receives it: the SNS envelope's subject, its
/// `Message` parsed, and its message attributes.
#[derive(Debug)]
pub struct Received {
    pub subject: String,
    pub body: Value,
    pub attributes: Value,
}

/// An SNS topic with an SQS queue subscribed (envelope delivery, as a queue subscriber sees it).
pub struct Subscriber {
    pub topic_arn: String,
    pub queue: Queue,
}

impl Subscriber {
    /// Creates the topic (or finds it: creating is idempotent) and a queue subscribed to it.
    pub async fn new(conf: &aws_config::SdkConfig, topic: &str, queue: &str) -> Subscriber {
        let sns = aws_sdk_sns::Client::new(conf);
        let topic_arn = sns
            .create_topic()
            .name(topic)
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string();
        let queue = Queue::create(conf, queue).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&queue.arn)
            .send()
            .await
            .unwrap();
        Subscriber { topic_arn, queue }
    }

    /// Every message the subscriber holds now, each deleted once read.
    pub async fn received(&self) -> Vec<Received> {
        self.queue
            .drain()
            .await
            .iter()
            .map(|m| {
                let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                Received {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                    body: serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap(),
                    attributes: envelope["MessageAttributes"].clone(),
                }
            })
            .collect()
    }
}

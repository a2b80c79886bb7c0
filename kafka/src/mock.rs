//! librdkafka's mock cluster, for the one-machine mode and the tests: real
//! brokers speaking the Kafka protocol on loopback ports, in this process.
//!
//! The cluster handle is not `Send`, so it lives on a thread of its own,
//! which takes commands (create a topic, stop) until [`MockKafka`] is
//! dropped. Topics are created through the mock's own API: it does not
//! serve the CreateTopics request.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

use crate::{KafkaArgs, KafkaError};

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        done: mpsc::Sender<Result<(), KafkaError>>,
    },
}

pub struct MockKafka {
    bootstrap: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl MockKafka {
    /// Starts a cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> Result<Self, KafkaError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (commands, inbox) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new()
            .name("kafka-mock".into())
            .spawn(move || match MockCluster::new(brokers) {
                Ok(cluster) => {
                    let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                    // Until the owner drops its sender.
                    while let Ok(command) = inbox.recv() {
                        match command {
                            Command::CreateTopic {
                                name,
                                partitions,
                                done,
                            } => {
                                let _ = done.send(cluster.create_topic(&name, partitions, 1));
                            }
                        }
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|_| KafkaError::Canceled)?;
        let bootstrap = ready_rx.recv().map_err(|_| KafkaError::Canceled)??;
        Ok(Self {
            bootstrap,
            commands: Some(commands),
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// How to reach this cluster: with a 1 ms fetch wait, because the mock
    /// broker holds every fetch for its full wait even when data arrives.
    pub fn args(&self) -> KafkaArgs {
        KafkaArgs {
            fetch_wait_ms: 1,
            ..KafkaArgs::new(self.bootstrap.clone())
        }
    }

    /// Creates topics with `partitions` partitions each.
    pub fn create_topics(&self, names: &[String], partitions: i32) -> Result<(), KafkaError> {
        let commands = self.commands.as_ref().ok_or(KafkaError::Canceled)?;
        for name in names {
            let (done, answer) = mpsc::channel();
            commands
                .send(Command::CreateTopic {
                    name: name.clone(),
                    partitions,
                    done,
                })
                .map_err(|_| KafkaError::Canceled)?;
            answer.recv().map_err(|_| KafkaError::Canceled)??;
        }
        Ok(())
    }
}

impl Drop for MockKafka {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

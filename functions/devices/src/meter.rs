//! Metering and quotas. Counts go to Prometheus (labels: account, dataset, application; never
//! the endpoint, so cardinality stays bounded) and, summed per endpoint, to the registry every
//! `flush_interval` (which keeps them per hour for the usage API and answers the accounts' quota
//! states). A quota is checked against the registry's last answer plus what this process counted
//! since: replicas may overshoot it by what they accept within one flush interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus::{IntCounterVec, Opts};

use crate::directory::{Binding, Counts, Directory, QuotaState, SeenAt, UsageDelta, UsageReport};
use crate::protocol::Failure;

pub struct DeviceMetrics {
    pub messages: IntCounterVec,
    pub samples: IntCounterVec,
    pub bytes: IntCounterVec,
    pub rejections: IntCounterVec,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("metric is valid");
    // Registered once per process in the default registry, which `/metrics` also renders.
    let _ = prometheus::default_registry().register(Box::new(counter.clone()));
    counter
}

/// The process's device metrics.
pub fn metrics() -> &'static DeviceMetrics {
    static METRICS: OnceLock<DeviceMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let labels = ["account", "dataset", "application"];
        DeviceMetrics {
            messages: counter(
                "weir_device_messages_total",
                "Device messages committed",
                &labels,
            ),
            samples: counter(
                "weir_device_samples_total",
                "Device samples committed",
                &labels,
            ),
            bytes: counter(
                "weir_device_bytes_total",
                "Payload bytes of committed device messages",
                &labels,
            ),
            rejections: counter(
                "weir_device_rejections_total",
                "Device messages refused, by status code",
                &["status"],
            ),
        }
    })
}

#[derive(Default)]
struct Pending {
    usage: HashMap<(String, String), UsageDelta>,
    seen: HashMap<String, i64>,
}

pub struct Meter {
    pending: Mutex<Pending>,
    /// Per account: its quota state, or `None` when the registry said it has none. Accounts not
    /// here yet take the state their token's resolution carried.
    quotas: Mutex<HashMap<String, Option<QuotaState>>>,
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

impl Meter {
    pub fn new() -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            quotas: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, binding: &Binding, counts: Counts) {
        let now = now_millis();
        let mut pending = self.pending.lock().expect("meter lock");
        let key = (binding.endpoint_id.clone(), binding.dataset_id.clone());
        pending
            .usage
            .entry(key)
            .or_insert_with(|| UsageDelta {
                at: now,
                account_id: binding.account_id.clone(),
                dataset_id: binding.dataset_id.clone(),
                application_id: binding.application_id.clone(),
                endpoint_id: binding.endpoint_id.clone(),
                counts: Counts::default(),
            })
            .counts
            .add(&counts);
        pending.seen.insert(binding.endpoint_id.clone(), now);
    }

    pub fn accepted(&self, binding: &Binding, samples: i64, bytes: i64) {
        let metrics = metrics();
        let labels = [
            binding.account_id.as_str(),
            binding.dataset.as_str(),
            binding.application_name.as_str(),
        ];
        metrics.messages.with_label_values(&labels).inc();
        metrics
            .samples
            .with_label_values(&labels)
            .inc_by(samples as u64);
        metrics
            .bytes
            .with_label_values(&labels)
            .inc_by(bytes as u64);
        let counts = Counts {
            messages: 1,
            samples,
            bytes,
            rejections: 0,
        };
        if let Some(Some(state)) = self
            .quotas
            .lock()
            .expect("quota lock")
            .get_mut(&binding.account_id)
        {
            state.used.add(&counts);
        }
        self.count(binding, counts);
    }

    /// A refused message; counted per endpoint when the token was valid.
    pub fn rejected(&self, binding: Option<&Binding>, failure: &Failure) {
        metrics()
            .rejections
            .with_label_values(&[&failure.status_code.to_string()])
            .inc();
        if let Some(binding) = binding {
            self.count(
                binding,
                Counts {
                    rejections: 1,
                    ..Counts::default()
                },
            );
        }
    }

    /// The failure to answer when the binding's account has used up its quota.
    pub fn over_quota(&self, binding: &Binding) -> Option<Failure> {
        let now = now_millis();
        let mut quotas = self.quotas.lock().expect("quota lock");
        let state = quotas
            .entry(binding.account_id.clone())
            .or_insert(binding.quota)
            .as_mut()?;
        let period = state.quota.period.millis();
        if now >= state.period_start + period {
            state.period_start = now.div_euclid(period) * period;
            state.used = Counts::default();
        }
        let samples = state
            .quota
            .max_samples
            .filter(|max| state.used.samples >= *max);
        let bytes = state.quota.max_bytes.filter(|max| state.used.bytes >= *max);
        let (limit, unit) = match (samples, bytes) {
            (Some(max), _) => (max, "samples"),
            (None, Some(max)) => (max, "bytes"),
            (None, None) => return None,
        };
        let renews = chrono::DateTime::from_timestamp_millis(state.period_start + period)
            .map(|time| time.to_rfc3339())
            .unwrap_or_default();
        Some(Failure::new(
            429,
            format!(
                "the account's quota of {limit} {unit} per {} is used up; it renews at {renews}",
                match state.quota.period {
                    crate::directory::Period::Hour => "hour",
                    crate::directory::Period::Day => "day",
                }
            ),
        ))
    }

    /// Sends what was counted since the last flush; on failure keeps it for the next one.
    pub async fn flush(&self, directory: &dyn Directory) {
        let taken = std::mem::take(&mut *self.pending.lock().expect("meter lock"));
        if taken.usage.is_empty() && taken.seen.is_empty() {
            return;
        }
        let report = UsageReport {
            usage: taken.usage.values().cloned().collect(),
            seen: taken
                .seen
                .iter()
                .map(|(endpoint_id, at)| SeenAt {
                    endpoint_id: endpoint_id.clone(),
                    at: *at,
                })
                .collect(),
        };
        match directory.report(&report).await {
            Ok(states) => {
                let mut quotas = self.quotas.lock().expect("quota lock");
                for delta in &report.usage {
                    quotas.insert(delta.account_id.clone(), None);
                }
                for state in states {
                    quotas.insert(state.account_id, Some(state.state));
                }
                // What was counted while the report travelled is not in the answer yet.
                let pending = self.pending.lock().expect("meter lock");
                for delta in pending.usage.values() {
                    if let Some(Some(state)) = quotas.get_mut(&delta.account_id) {
                        state.used.add(&Counts {
                            rejections: 0,
                            ..delta.counts
                        });
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot report device usage; it is kept for the next report");
                let mut pending = self.pending.lock().expect("meter lock");
                for (key, delta) in taken.usage {
                    match pending.usage.get_mut(&key) {
                        Some(existing) => existing.counts.add(&delta.counts),
                        None => {
                            pending.usage.insert(key, delta);
                        }
                    }
                }
                for (endpoint, at) in taken.seen {
                    let entry = pending.seen.entry(endpoint).or_insert(at);
                    *entry = (*entry).max(at);
                }
            }
        }
    }

    /// Flushes every `interval` until the process ends.
    pub fn spawn_flusher(self: &Arc<Self>, directory: Arc<dyn Directory>, interval: Duration) {
        let meter = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                meter.flush(directory.as_ref()).await;
            }
        });
    }
}

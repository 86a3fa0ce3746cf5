//! How many workers a namespace's ResourceQuotas admit.

use k8s_openapi::api::core::v1::{ResourceQuota, ResourceRequirements};

use crate::quantity;

/// What one worker pod takes of a quota's resource; none when the resource is not about pods.
fn per_pod(resource: &str, resources: Option<&ResourceRequirements>) -> Option<f64> {
    let amount = |section: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
                  name: &str| {
        section
            .and_then(|values| values.get(name))
            .and_then(|value| quantity::parse(&value.0))
            .unwrap_or(0.0)
    };
    let requests = resources.and_then(|resources| resources.requests.as_ref());
    let limits = resources.and_then(|resources| resources.limits.as_ref());
    match resource {
        "pods" | "count/pods" => Some(1.0),
        "cpu" | "requests.cpu" => Some(amount(requests, "cpu")),
        "memory" | "requests.memory" => Some(amount(requests, "memory")),
        "limits.cpu" => Some(amount(limits, "cpu")),
        "limits.memory" => Some(amount(limits, "memory")),
        _ => None,
    }
}

/// The number of workers (counting the `existing` ones, which the quotas' `used` already
/// includes) that fit in every quota; none without a quota on pods, CPU or memory.
pub fn capacity(
    quotas: &[ResourceQuota],
    resources: Option<&ResourceRequirements>,
    existing: u32,
) -> Option<u32> {
    let mut capacity: Option<u32> = None;
    for quota in quotas {
        // The quota controller fills `status`; until then the spec's hard limits apply unused.
        let hard = quota
            .status
            .as_ref()
            .and_then(|status| status.hard.clone())
            .or_else(|| quota.spec.as_ref().and_then(|spec| spec.hard.clone()))
            .unwrap_or_default();
        let used = quota
            .status
            .as_ref()
            .and_then(|status| status.used.clone())
            .unwrap_or_default();
        for (resource, limit) in &hard {
            let Some(each) = per_pod(resource, resources) else {
                continue;
            };
            if each <= 0.0 {
                continue;
            }
            let Some(limit) = quantity::parse(&limit.0) else {
                continue;
            };
            let used = used
                .get(resource)
                .and_then(|value| quantity::parse(&value.0))
                .unwrap_or(0.0);
            let room = ((limit - used) / each).floor().max(0.0);
            let fits = (room as u64).saturating_add(u64::from(existing));
            let fits = u32::try_from(fits).unwrap_or(u32::MAX);
            capacity = Some(capacity.map_or(fits, |current| current.min(fits)));
        }
    }
    capacity
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{ResourceQuotaSpec, ResourceQuotaStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect()
    }

    fn quota(hard: &[(&str, &str)], used: Option<&[(&str, &str)]>) -> ResourceQuota {
        ResourceQuota {
            spec: Some(ResourceQuotaSpec {
                hard: Some(map(hard)),
                ..Default::default()
            }),
            status: used.map(|used| ResourceQuotaStatus {
                hard: Some(map(hard)),
                used: Some(map(used)),
            }),
            ..Default::default()
        }
    }

    fn worker() -> ResourceRequirements {
        ResourceRequirements {
            requests: Some(map(&[("cpu", "500m"), ("memory", "1Gi")])),
            limits: Some(map(&[("memory", "2Gi")])),
            ..Default::default()
        }
    }

    #[test]
    fn no_quota_means_no_bound() {
        assert_eq!(capacity(&[], Some(&worker()), 3), None);
        let unrelated = quota(&[("services", "5")], None);
        assert_eq!(capacity(&[unrelated], Some(&worker()), 0), None);
    }

    #[test]
    fn the_tightest_resource_of_every_quota_bounds_the_workers() {
        // 4 cores with 1 used: 6 more workers by CPU; 10Gi memory limits with 4Gi used: 3 more.
        let cpu = quota(&[("requests.cpu", "4")], Some(&[("requests.cpu", "1")]));
        let memory = quota(
            &[("limits.memory", "10Gi")],
            Some(&[("limits.memory", "4Gi")]),
        );
        assert_eq!(
            capacity(std::slice::from_ref(&cpu), Some(&worker()), 2),
            Some(8)
        );
        assert_eq!(capacity(&[cpu, memory], Some(&worker()), 2), Some(5));
    }

    #[test]
    fn pod_counts_apply_without_resources_and_a_full_quota_admits_only_what_runs() {
        let pods = quota(&[("pods", "10")], Some(&[("pods", "10")]));
        assert_eq!(capacity(&[pods], None, 2), Some(2));
        let unused = quota(&[("count/pods", "3")], None);
        assert_eq!(capacity(&[unused], None, 0), Some(3));
    }
}

//! Why a reconcile failed, and what to do about it: an object the API server
//! refuses as invalid waits for a spec change; anything else is retried
//! with a backoff. Pure, with table tests.

use std::time::Duration;

use crate::api::quantity;

/// Why a reconcile failed; each variant names the stage and the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("applying the head Service {name}: {source}")]
    Service { name: String, source: kube::Error },
    #[error("deleting pod {name}: {source}")]
    DeletePod { name: String, source: kube::Error },
    #[error("creating pod {name} of pod type {pod_type}: {source}")]
    CreatePod {
        name: String,
        pod_type: String,
        /// Fields of the pod the operator itself finds wrong (an API server
        /// that cannot decode a body names none): see [`bad_quantities`].
        fields: Vec<String>,
        source: kube::Error,
    },
    #[error("writing status: {source}")]
    Status { source: kube::Error },
}

/// What an API error means for the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The API server refuses the object as invalid (400, 422): sending it
    /// again changes nothing until the spec does.
    Rejected,
    /// Anything else (409, 429, 5xx, timeouts, connection errors, and 403 or
    /// 404, which a restarting API server answers while its authorizer or
    /// its CRDs load): retried with a backoff.
    Transient,
}

impl Error {
    /// The stage that failed (the `stage` label of the error metric).
    pub fn stage(&self) -> &'static str {
        match self {
            Error::Service { .. } => "service",
            Error::DeletePod { .. } => "delete",
            Error::CreatePod { .. } => "create",
            Error::Status { .. } => "status",
        }
    }

    pub fn source(&self) -> &kube::Error {
        match self {
            Error::Service { source, .. }
            | Error::DeletePod { source, .. }
            | Error::CreatePod { source, .. }
            | Error::Status { source } => source,
        }
    }

    pub fn class(&self) -> Class {
        classify(self.source())
    }

    /// The `reason` label of the error metric.
    pub fn reason(&self) -> &'static str {
        reason(self.source())
    }

    /// What the API server refused, for the `Valid` condition and the Event:
    /// the object (and its pod type), the fields it named, and its message.
    pub fn rejection_message(&self) -> String {
        let what = match self {
            Error::Service { name, .. } => format!("the head Service {name}"),
            Error::DeletePod { name, .. } => format!("the deletion of pod {name}"),
            Error::CreatePod { name, pod_type, .. } => {
                format!("pod {name} of pod type {pod_type}")
            }
            Error::Status { .. } => "the status".to_string(),
        };
        let found: &[String] = match self {
            Error::CreatePod { fields, .. } => fields,
            _ => &[],
        };
        match self.source() {
            kube::Error::Api(status) => {
                let mut fields: Vec<&str> = status
                    .details
                    .iter()
                    .flat_map(|d| &d.causes)
                    .map(|c| c.field.as_str())
                    .filter(|f| !f.is_empty())
                    .collect();
                fields.extend(found.iter().map(String::as_str));
                let fields = if fields.is_empty() {
                    String::new()
                } else {
                    format!(" (fields {})", fields.join(", "))
                };
                format!("the API server rejected {what}{fields}: {}", status.message)
            }
            other => format!("the API server rejected {what}: {other}"),
        }
    }
}

/// The resource quantities of a pod (as JSON) that are no Kubernetes
/// quantity, by field path (`spec.containers[1].resources.requests.cpu`).
pub fn bad_quantities(pod: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        let containers = pod["spec"][list].as_array().map_or(&[][..], Vec::as_slice);
        for (i, container) in containers.iter().enumerate() {
            for section in ["requests", "limits"] {
                let Some(amounts) = container["resources"][section].as_object() else {
                    continue;
                };
                for (name, value) in amounts {
                    if !value.as_str().is_some_and(quantity::matches_api_pattern)
                        && !value.is_number()
                    {
                        out.push(format!("spec.{list}[{i}].resources.{section}.{name}"));
                    }
                }
            }
        }
    }
    out
}

/// Whether an error is worth retrying soon.
pub fn classify(error: &kube::Error) -> Class {
    match error {
        kube::Error::Api(status) if matches!(status.code, 400 | 422) => Class::Rejected,
        _ => Class::Transient,
    }
}

/// A short label for an error, for metrics.
pub fn reason(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) => match status.code {
            400 | 422 => "invalid",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            429 => "throttled",
            500..=599 => "server_error",
            _ => "api_other",
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => "connection",
        _ => "client",
    }
}

/// The wait before the `retries`-th retry (0 for the first) of a transient
/// failure: 1 s, doubling, at most 5 minutes.
pub fn backoff(retries: u32) -> Duration {
    Duration::from_secs(1u64 << retries.min(9)).min(REJECTED_BACKOFF)
}

/// How long an object the API server rejected waits before it is sent again
/// (sooner when the spec changes).
pub const REJECTED_BACKOFF: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("refused", "Something")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn only_invalid_objects_are_rejected() {
        for (code, class, label) in [
            (400, Class::Rejected, "invalid"),
            (422, Class::Rejected, "invalid"),
            (403, Class::Transient, "forbidden"),
            (404, Class::Transient, "not_found"),
            (409, Class::Transient, "conflict"),
            (429, Class::Transient, "throttled"),
            (500, Class::Transient, "server_error"),
            (503, Class::Transient, "server_error"),
        ] {
            assert_eq!(classify(&api(code)), class, "{code}");
            assert_eq!(reason(&api(code)), label, "{code}");
        }
        let timeout = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )));
        assert_eq!(classify(&timeout), Class::Transient);
        assert_eq!(reason(&timeout), "connection");
    }

    #[test]
    fn quantities_the_api_server_refuses_are_named_by_field() {
        let pod = serde_json::json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": "1"}, "limits": {"memory": 2}}},
            {"resources": {"requests": {"cpu": "lots"}}},
        ]}});
        assert_eq!(
            bad_quantities(&pod),
            ["spec.containers[1].resources.requests.cpu"]
        );
    }

    #[test]
    fn transient_failures_back_off_from_one_second_to_five_minutes() {
        let waits: Vec<u64> = (0..12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn a_rejection_names_the_pod_type_the_fields_and_the_message() {
        let mut status = kube::core::Status::failure(
            "Pod \"c-w-x\" is invalid: spec.containers[0].resources.requests: Invalid value: \"lots\"",
            "Invalid",
        )
        .with_code(422);
        status.details = Some(kube::core::response::StatusDetails {
            name: "c-w-x".into(),
            group: String::new(),
            kind: "Pod".into(),
            uid: String::new(),
            causes: vec![kube::core::response::StatusCause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"lots\"".into(),
                field: "spec.containers[0].resources.requests".into(),
            }],
            retry_after_seconds: 0,
        });
        let error = Error::CreatePod {
            name: "c-w-x".into(),
            pod_type: "w".into(),
            fields: vec![],
            source: kube::Error::Api(status.boxed()),
        };
        assert_eq!(error.class(), Class::Rejected);
        assert_eq!(error.stage(), "create");
        let message = error.rejection_message();
        for part in [
            "pod type w",
            "fields spec.containers[0].resources.requests",
            "Invalid value: \"lots\"",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }
}

//! Hand-written schema fragments for fields whose full schema would be too big.
//!
//! The legacy CRD inlined the whole Pod schema (~300 KB), which broke
//! client-side `kubectl apply` (its last-applied annotation is capped at
//! 256 KiB). We describe the outline the operator relies on and let the
//! rest through; the operator validates the pod spec itself.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An object whose content the API server keeps as it is.
pub fn preserved_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// The parts of a PodSpec the operator relies on: at least one container, the
/// first of which runs Ray; everything else is kept as written.
pub fn pod_spec_outline(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A Kubernetes PodSpec (see `kubectl explain pod.spec`); the first container runs Ray.",
        "type": "object",
        "required": ["containers"],
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "containers": {
                "description": "The pod's containers; the first runs Ray.",
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "name": {"type": "string", "description": "Container name."},
                        "image": {"type": "string", "description": "Container image; a Ray image for the first container."}
                    }
                }
            },
            "nodeSelector": {
                "description": "Labels a node must carry to run this pod type.",
                "type": "object",
                "additionalProperties": {"type": "string"}
            }
        }
    })
}

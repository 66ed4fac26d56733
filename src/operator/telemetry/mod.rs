//! What the operator tells about itself: health and metrics over HTTP, log
//! lines, and the allocator it runs with.

pub mod http;
pub mod logging;
pub mod memory;
pub mod metrics;

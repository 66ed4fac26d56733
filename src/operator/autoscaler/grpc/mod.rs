//! A lean unary gRPC client over cleartext HTTP/2, for the GCS calls: small
//! enough per idle connection that every cluster can keep one open.

mod channel;
mod conn;
mod error;
mod frame;
mod headers;

pub use channel::Channel;
pub use error::CallError;

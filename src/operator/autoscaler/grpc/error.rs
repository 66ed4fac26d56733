//! How a unary call fails.

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP/2 protocol error: {0}")]
    Protocol(String),
    /// The server answered with a gRPC status other than OK.
    #[error("status {code}: {message}")]
    Status { code: i32, message: String },
}

impl CallError {
    /// The same error for another call of a batch (io errors are not `Clone`).
    pub fn clone_kind(&self) -> CallError {
        let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            CallError::Connect(e) => CallError::Connect(io(e)),
            CallError::Io(e) => CallError::Io(io(e)),
            CallError::Protocol(m) => CallError::Protocol(m.clone()),
            CallError::Status { code, message } => CallError::Status {
                code: *code,
                message: message.clone(),
            },
        }
    }
}

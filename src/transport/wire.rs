//! The envelope every transport frame carries.
//!
//! Client → server: `{"id": N, "req": <request>}`.
//! Server → client: `{"id": N, "ok": <response>}` or `{"id": N, "err": {..}}`;
//! or, just before the server drops a connection it cannot go on reading,
//! `{"id": 0, "fatal": "<why>"}`. Ids are chosen by the client and only
//! match responses to requests on one connection (multiplexing).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A request frame as read by the server.
#[derive(Debug, Deserialize)]
pub struct RequestFrame {
    pub id: u64,
    pub req: Box<RawValue>,
}

/// A response frame as read by the client.
#[derive(Debug, Deserialize)]
pub struct ResponseFrame {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub ok: Option<Box<RawValue>>,
    #[serde(default)]
    pub err: Option<RpcError>,
    #[serde(default)]
    pub fatal: Option<String>,
}

/// What kind of failure a handler reports; lets callers decide whether to
/// retry elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpcErrorCode {
    /// The request could not be decoded or is invalid.
    BadRequest,
    /// The caller may not make this request.
    Forbidden,
    /// The node cannot serve it now (e.g. shutting down); retry may help.
    Unavailable,
    /// Anything else went wrong on the serving node.
    Internal,
}

/// An error returned by the remote handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: RpcErrorCode,
    pub message: String,
}

impl RpcError {
    pub fn new(code: RpcErrorCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> RpcError {
        RpcError::new(RpcErrorCode::BadRequest, message)
    }
    pub fn forbidden(message: impl Into<String>) -> RpcError {
        RpcError::new(RpcErrorCode::Forbidden, message)
    }
    pub fn internal(message: impl Into<String>) -> RpcError {
        RpcError::new(RpcErrorCode::Internal, message)
    }
}

#[derive(Serialize)]
struct RequestOut<'a, T: Serialize> {
    id: u64,
    req: &'a T,
}

#[derive(Serialize)]
struct OkOut<'a> {
    id: u64,
    ok: &'a RawValue,
}

#[derive(Serialize)]
struct ErrOut<'a> {
    id: u64,
    err: &'a RpcError,
}

#[derive(Serialize)]
struct FatalOut<'a> {
    id: u64,
    fatal: &'a str,
}

/// Encodes a request frame payload.
pub fn encode_request<T: Serialize>(id: u64, req: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&RequestOut { id, req })
}

/// Encodes a response frame payload.
pub fn encode_response(id: u64, reply: &Result<Box<RawValue>, RpcError>) -> Vec<u8> {
    let encoded = match reply {
        Ok(ok) => serde_json::to_vec(&OkOut { id, ok }),
        Err(err) => serde_json::to_vec(&ErrOut { id, err }),
    };
    // Serialising these plain structs cannot fail; keep a valid frame if it did.
    encoded.unwrap_or_else(|e| encode_fatal(&format!("cannot encode response: {e}")))
}

/// Encodes the last frame before the server drops a connection.
pub fn encode_fatal(why: &str) -> Vec<u8> {
    serde_json::to_vec(&FatalOut { id: 0, fatal: why })
        .unwrap_or_else(|_| b"{\"id\":0,\"fatal\":\"connection error\"}".to_vec())
}

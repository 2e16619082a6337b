//! The hand-off: a datagram the fast path does not fully understand is
//! answered in the worker thread by the full path — the same [`Handler`]
//! hickory's server calls, driven synchronously — and the reply goes out on
//! the same socket. This mirrors hickory-server 0.26's UDP handling step
//! by step (`ServerContext::handle_request` and `ResponseHandle`), so the
//! reply is the one hickory's own listener would send:
//! - fewer than 12 bytes: dropped;
//! - a header but an undecodable message: FORMERR with no question;
//! - a decodable response (QR=1): dropped (no reflection);
//! - otherwise `Handler::handle_request`, encoded with the UDP size limit
//!   (the response's EDNS size, else 512), SERVFAIL if encoding fails.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::handler::Handler;

/// A [`ResponseHandler`] that keeps the encoded reply.
#[derive(Clone)]
struct Capture(Arc<Mutex<Option<Vec<u8>>>>, Protocol);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = encode_for(self.1, response)?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(info)
    }
}

/// hickory's `MessageResponse::encode` (crate-private there).
fn encode_for<'a>(
    protocol: Protocol,
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let id = response.metadata().id;
    let max = match protocol {
        Protocol::Udp => response.edns().map_or(512, |e| e.max_payload()),
        _ => u16::MAX,
    };
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max);
    if let Ok(info) = response.destructive_emit(&mut encoder) {
        return Ok((info, bytes));
    }
    bytes.clear();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(512);
    let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    header.emit(&mut encoder).map_err(NetError::from)?;
    Ok((ResponseInfo::from(header), bytes))
}

/// The full path's reply to the UDP datagram `packet` from `src`, or None
/// if it sends none.
pub fn full_path(handler: &Handler, packet: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    full_path_on(handler, packet, src, Protocol::Udp)
}

/// [`full_path`] for a message that came over `protocol` (UDP or TCP).
pub fn full_path_on(
    handler: &Handler,
    packet: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    let mut decoder = BinDecoder::new(packet);
    let header = Header::read(&mut decoder).ok()?;
    let request = match Request::from_bytes(packet.to_vec(), src, protocol) {
        Ok(r) => r,
        Err(_) => {
            let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
            let resp = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            return encode_for(protocol, resp).ok().map(|(_, b)| b);
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    let capture = Capture(Arc::default(), protocol);
    futures::executor::block_on(handler.handle_request::<_, TokioTime>(&request, capture.clone()));
    let out = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    out
}

//! Decoding of `DeleteOptions` from a JSON body, a protobuf body (D-0.5) or the query (G-1).

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;

use super::Query;
use crate::error::{ApiError, ApiResult};
use crate::graceful::DeleteOptions;

const MAGIC: &[u8] = b"k8s\0";

/// A minimal protobuf field reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Next (field number, value), None at the end; Err on malformed input.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ()> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint().ok_or(())?;
        let (num, wt) = (tag >> 3, tag & 7);
        let f = match wt {
            0 => Field::Varint(self.varint().ok_or(())?),
            2 => {
                let len = self.varint().ok_or(())? as usize;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.buf.len())
                    .ok_or(())?;
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Field::Bytes(s)
            }
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            _ => return Err(()),
        };
        if self.pos > self.buf.len() {
            return Err(());
        }
        Ok(Some((num, f)))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decode a protobuf `runtime.Unknown` envelope holding `DeleteOptions`.
pub fn decode_protobuf(body: &[u8]) -> Result<DeleteOptions, String> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or("missing protobuf magic prefix")?;
    let mut env = Reader::new(inner);
    let mut raw: &[u8] = &[];
    while let Some((num, f)) = env.next().map_err(|_| "malformed protobuf envelope")? {
        if let (2, Field::Bytes(b)) = (num, f) {
            raw = b;
        }
    }
    let mut opts = DeleteOptions::default();
    let mut r = Reader::new(raw);
    while let Some((num, f)) = r.next().map_err(|_| "malformed protobuf DeleteOptions")? {
        match (num, f) {
            (1, Field::Varint(v)) => opts.grace = Some(v as i64),
            (2, Field::Bytes(b)) => {
                let mut p = Reader::new(b);
                while let Some((n, f)) = p.next().map_err(|_| "malformed protobuf Preconditions")? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => opts.uid = Some(text(s)),
                        (2, Field::Bytes(s)) => opts.rv = Some(text(s)),
                        _ => {}
                    }
                }
            }
            (4, Field::Bytes(s)) => opts.propagation = Some(text(s)),
            (5, Field::Bytes(s)) => opts.dry_run |= s == b"All",
            _ => {}
        }
    }
    Ok(opts)
}

/// Read DeleteOptions from the request: body (JSON or protobuf) if present, else the query.
pub fn from_request(q: &Query, headers: &HeaderMap, body: &Bytes) -> ApiResult<DeleteOptions> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.is_empty() {
        let grace =
            match q.non_empty("gracePeriodSeconds") {
                Some(g) => Some(g.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}"))
                })?),
                None => None,
            };
        return Ok(DeleteOptions {
            grace,
            uid: None,
            rv: None,
            dry_run: q.dry_run(),
            propagation: q.non_empty("propagationPolicy").map(String::from),
        });
    }
    if ct.starts_with("application/vnd.kubernetes.protobuf") || body.starts_with(MAGIC) {
        return decode_protobuf(body).map_err(ApiError::bad_request);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })?;
    DeleteOptions::from_json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn envelope(raw: &[u8]) -> Vec<u8> {
        let mut v = hex("6b3873000a130a027631120d44656c6574654f7074696f6e7312");
        v.push(raw.len() as u8);
        v.extend_from_slice(raw);
        v.extend_from_slice(&hex("1a002200"));
        v
    }

    #[test]
    fn kubectl_default_body_is_empty_options() {
        let body = hex("6b3873000a130a027631120d44656c6574654f7074696f6e7312001a002200");
        assert_eq!(decode_protobuf(&body).unwrap(), DeleteOptions::default());
    }

    #[test]
    fn grace_dry_run_and_preconditions() {
        assert_eq!(
            decode_protobuf(&envelope(&hex("080a"))).unwrap().grace,
            Some(10)
        );
        assert!(
            decode_protobuf(&envelope(&hex("2a03416c6c")))
                .unwrap()
                .dry_run
        );
        let o = decode_protobuf(&envelope(&[
            0x12, 0x07, 0x0a, 0x01, b'u', 0x12, 0x02, b'4', b'2',
        ]))
        .unwrap();
        assert_eq!(o.uid.as_deref(), Some("u"));
        assert_eq!(o.rv.as_deref(), Some("42"));
    }

    #[test]
    fn malformed_is_rejected() {
        assert!(decode_protobuf(b"k8s\0\x12\x09ab").is_err());
        assert!(decode_protobuf(b"nope").is_err());
    }
}

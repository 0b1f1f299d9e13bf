//! MySQL's compressed transactions (8.0.20+, `binlog_transaction_compression=ON`): the
//! server writes a whole transaction as one TRANSACTION_PAYLOAD event (type 40) whose body
//! is a small header and the transaction's own events, zstd-compressed. Each inner event
//! has the usual 19-byte header and no checksum (the outer event's checksum covers them).
//!
//! This module owns opening such an event and cutting its payload into the inner events,
//! which it yields as the `mysql` crate's `Event`s, one at a time (memory stays at one
//! inner event, whatever the size of the transaction). It does not interpret the inner
//! events: the reader handles them exactly like top-level ones. Bad input (an unknown
//! compression algorithm, a corrupt zstd stream, a truncated or oversized inner event,
//! an event type that cannot occur inside a payload) is a `PayloadError` naming the
//! problem, never a panic: the crate's own parser panics on some of these, so the
//! header and the event framing are checked here before the crate sees any bytes.

use std::io::{self, Read};

use mysql::binlog::events::{BinlogEventFooter, Event, TransactionPayloadReader};

const HEADER_LEN: usize = 19;
/// Payload header field types (MySQL's `Transaction_payload_event` wire format).
const FIELD_END: u64 = 0;
const FIELD_PAYLOAD_SIZE: u64 = 1;
const FIELD_COMPRESSION: u64 = 2;
const FIELD_UNCOMPRESSED_SIZE: u64 = 3;
const COMPRESSION_ZSTD: u64 = 0;
const COMPRESSION_NONE: u64 = 255;
/// Event types that never occur inside a payload; the crate's reader could not handle
/// them there either (a format description would change how the rest is read).
const TYPE_ROTATE: u8 = 4;
const TYPE_FORMAT_DESCRIPTION: u8 = 15;
const TYPE_TRANSACTION_PAYLOAD: u8 = 40;

/// Why a TRANSACTION_PAYLOAD event cannot be read.
pub type PayloadError = super::EventError;
use super::EventError;

/// The inner events of one TRANSACTION_PAYLOAD event, in order. Each item is the inner
/// event's byte offset in the decompressed payload and the event. After the first error
/// the iterator ends.
pub struct InnerEvents<'a> {
    reader: TransactionPayloadReader<'a>,
    /// The session's format description with checksums off: inner events carry none.
    fde: mysql::binlog::events::FormatDescriptionEvent<'static>,
    offset: u64,
    uncompressed_size: Option<u64>,
    done: bool,
}

/// Opens the payload of `event`, a TRANSACTION_PAYLOAD event read from the session's
/// stream (it carries the session's format description).
pub fn inner_events(event: &Event) -> Result<InnerEvents<'_>, PayloadError> {
    let header = parse_header(event.data())?;
    let reader = match header.compression {
        COMPRESSION_ZSTD => TransactionPayloadReader::new_zstd(header.payload)
            .map_err(|e| EventError::caused("cannot start decompressing the payload", e))?,
        COMPRESSION_NONE => TransactionPayloadReader::new_uncompressed(header.payload),
        other => {
            return Err(EventError::new(format!(
                "unknown compression algorithm {other} (pikachu reads zstd and uncompressed \
                 payloads)"
            )))
        }
    };
    let fde = event
        .fde()
        .clone()
        .with_footer(BinlogEventFooter::default());
    Ok(InnerEvents {
        reader,
        fde,
        offset: 0,
        uncompressed_size: header.uncompressed_size,
        done: false,
    })
}

struct PayloadHeader<'a> {
    compression: u64,
    uncompressed_size: Option<u64>,
    payload: &'a [u8],
}

/// MySQL's length-encoded integer (`net_field_length`); also read by `compressed`.
pub(super) fn lenenc(buf: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = buf.split_first()?;
    let n = match first {
        0..=0xfa => {
            *buf = rest;
            return Some(u64::from(first));
        }
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = rest.get(..n)?;
    *buf = &rest[n..];
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}

/// The header is a list of (type, length, value) fields, every number length-encoded,
/// ended by a field of type 0; the compressed bytes follow.
fn parse_header(data: &[u8]) -> Result<PayloadHeader<'_>, PayloadError> {
    let mut buf = data;
    let truncated = || EventError::new("the payload header is truncated or malformed");
    let (mut size, mut compression, mut uncompressed_size) = (None, None, None);
    loop {
        let field = lenenc(&mut buf).ok_or_else(truncated)?;
        if field == FIELD_END {
            break;
        }
        let len = lenenc(&mut buf).ok_or_else(truncated)?;
        let len = usize::try_from(len).map_err(|_| truncated())?;
        let mut value = buf.get(..len).ok_or_else(truncated)?;
        buf = &buf[len..];
        // Unknown fields are skipped: newer servers may add some.
        let slot = match field {
            FIELD_PAYLOAD_SIZE => &mut size,
            FIELD_COMPRESSION => &mut compression,
            FIELD_UNCOMPRESSED_SIZE => &mut uncompressed_size,
            _ => continue,
        };
        *slot = Some(lenenc(&mut value).ok_or_else(truncated)?);
    }
    let size = size.ok_or_else(|| EventError::new("the payload header has no payload size"))?;
    let compression =
        compression.ok_or_else(|| EventError::new("the payload header has no compression type"))?;
    let payload = usize::try_from(size)
        .ok()
        .and_then(|n| buf.get(..n))
        .ok_or_else(|| {
            EventError::new(format!(
                "the payload header announces {size} bytes but the event has {} left",
                buf.len()
            ))
        })?;
    Ok(PayloadHeader {
        compression,
        uncompressed_size,
        payload,
    })
}

impl InnerEvents<'_> {
    fn next_event(&mut self) -> Result<Option<(u64, Event)>, PayloadError> {
        let at = self.offset;
        let mut head = [0u8; HEADER_LEN];
        let got = read_full(&mut self.reader, &mut head).map_err(|e| self.io_error(e))?;
        if got == 0 {
            if let Some(expected) = self.uncompressed_size {
                if expected != at {
                    return Err(EventError::new(format!(
                        "the payload decompressed to {at} bytes but its header says {expected}"
                    )));
                }
            }
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(EventError::new(format!(
                "the decompressed payload ends inside an event header at offset {at}"
            )));
        }
        let event_type = head[4];
        let size = u64::from(u32::from_le_bytes([head[9], head[10], head[11], head[12]]));
        if size < HEADER_LEN as u64 {
            return Err(EventError::new(format!(
                "inner event at offset {at} has an impossible size of {size} bytes"
            )));
        }
        if let Some(expected) = self.uncompressed_size {
            if at + size > expected {
                return Err(EventError::new(format!(
                    "inner event at offset {at} claims {size} bytes, past the payload's \
                     {expected}"
                )));
            }
        }
        if matches!(
            event_type,
            TYPE_ROTATE | TYPE_FORMAT_DESCRIPTION | TYPE_TRANSACTION_PAYLOAD
        ) {
            return Err(EventError::new(format!(
                "inner event at offset {at} has type {event_type}, which cannot occur inside \
                 a transaction payload"
            )));
        }
        let mut raw = head.to_vec();
        // `take` + `read_to_end` grows the buffer as bytes arrive: a corrupt size field
        // cannot make us allocate gigabytes up front.
        let body = size - HEADER_LEN as u64;
        (&mut self.reader)
            .take(body)
            .read_to_end(&mut raw)
            .map_err(|e| self.io_error(e))?;
        if (raw.len() as u64) < size {
            return Err(EventError::new(format!(
                "the decompressed payload ends inside the inner event at offset {at} ({} of \
                 {size} bytes)",
                raw.len()
            )));
        }
        self.offset = at + size;
        let event = Event::read(&self.fde, raw.as_slice()).map_err(|e| {
            EventError::caused(
                format_args!("cannot read the inner event at offset {at}"),
                e,
            )
        })?;
        Ok(Some((at, event)))
    }

    fn io_error(&self, e: io::Error) -> PayloadError {
        EventError::caused(
            format_args!(
                "cannot decompress the payload (after {} bytes)",
                self.offset
            ),
            e,
        )
    }
}

impl Iterator for InnerEvents<'_> {
    type Item = Result<(u64, Event), PayloadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_event().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Builders of raw events for tests here and in the reader.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use mysql::binlog::events::FormatDescriptionEvent;
    use mysql::binlog::BinlogVersion;

    pub(crate) fn event_bytes(event_type: u8, log_pos: u32, body: &[u8]) -> Vec<u8> {
        let size = (HEADER_LEN + body.len()) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        v.push(event_type);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&log_pos.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    /// TABLE_MAP of `shop`.`orders` (id INT, note VARCHAR(20)) as table 77.
    pub(crate) fn table_map() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&77u64.to_le_bytes()[..6]);
        b.extend_from_slice(&1u16.to_le_bytes());
        for name in [&b"shop"[..], b"orders"] {
            b.push(name.len() as u8);
            b.extend_from_slice(name);
            b.push(0);
        }
        b.push(2); // columns
        b.extend_from_slice(&[3, 15]); // INT, VARCHAR
        b.extend_from_slice(&[2, 20, 0]); // metadata: VARCHAR max 20 bytes
        b.push(0b10); // nullable: note
        b
    }

    /// WRITE_ROWS (v2) of table 77 with rows (1, "a") and (2, NULL).
    pub(crate) fn write_rows() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&77u64.to_le_bytes()[..6]);
        b.extend_from_slice(&1u16.to_le_bytes()); // STMT_END
        b.extend_from_slice(&2u16.to_le_bytes()); // no extra data
        b.push(2);
        b.push(0b11);
        b.extend_from_slice(&[0b00, 1, 0, 0, 0, 1, b'a']);
        b.extend_from_slice(&[0b10, 2, 0, 0, 0]);
        b
    }

    pub(crate) fn inner_stream() -> Vec<u8> {
        let mut v = event_bytes(19, 0, &table_map());
        v.extend(event_bytes(30, 0, &write_rows()));
        v.extend(event_bytes(16, 0, &42u64.to_le_bytes()));
        v
    }

    pub(crate) fn lenenc_bytes(n: u64, out: &mut Vec<u8>) {
        if n < 0xfb {
            out.push(n as u8);
        } else {
            out.push(0xfe);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    pub(crate) fn field(t: u64, value: u64, out: &mut Vec<u8>) {
        let mut v = Vec::new();
        lenenc_bytes(value, &mut v);
        lenenc_bytes(t, out);
        lenenc_bytes(v.len() as u64, out);
        out.extend(v);
    }

    /// A TRANSACTION_PAYLOAD event as MySQL writes it, read back through the crate like
    /// the stream does.
    pub(crate) fn payload_event(compression: u64, uncompressed_size: u64, payload: &[u8]) -> Event {
        let mut body = Vec::new();
        field(FIELD_COMPRESSION, compression, &mut body);
        field(FIELD_UNCOMPRESSED_SIZE, uncompressed_size, &mut body);
        field(FIELD_PAYLOAD_SIZE, payload.len() as u64, &mut body);
        body.push(FIELD_END as u8);
        body.extend_from_slice(payload);
        let raw = event_bytes(40, 4000, &body);
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        Event::read(&fde, raw.as_slice()).expect("the test event is well formed")
    }

    pub(crate) fn zstd_event(inner: &[u8]) -> Event {
        let compressed = zstd::encode_all(inner, 3).expect("zstd compresses");
        payload_event(COMPRESSION_ZSTD, inner.len() as u64, &compressed)
    }

    /// TABLE_MAP of `shop`.`orders` as table 77, with FULL metadata (names, signedness,
    /// charset, primary key), so that no `information_schema` lookup is needed.
    pub(crate) fn table_map_full() -> Vec<u8> {
        let mut b = table_map();
        let tlv = |t: u8, v: &[u8], out: &mut Vec<u8>| {
            out.push(t);
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        };
        tlv(1, &[0], &mut b); // signedness: id signed
        tlv(3, &[45], &mut b); // column charsets: note utf8mb4
        tlv(4, b"\x02id\x04note", &mut b); // names
        tlv(8, &[0], &mut b); // primary key: id
        b
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use mysql::binlog::events::{EventData, FormatDescriptionEvent, RowsEventData};
    use mysql::binlog::BinlogVersion;

    fn collect(event: &Event) -> Result<Vec<(u64, Event)>, PayloadError> {
        inner_events(event)?.collect()
    }

    #[test]
    fn zstd_payload_yields_table_map_rows_and_xid() {
        let inner = inner_stream();
        let outer = zstd_event(&inner);
        let events = collect(&outer).expect("the payload decodes");
        assert_eq!(events.len(), 3);
        let offsets: Vec<u64> = events.iter().map(|(o, _)| *o).collect();
        let tm_len = (HEADER_LEN + table_map().len()) as u64;
        let rows_len = (HEADER_LEN + write_rows().len()) as u64;
        assert_eq!(offsets, [0, tm_len, tm_len + rows_len]);
        // Inner events carry no checksum.
        assert!(events.iter().all(|(_, e)| e.checksum().is_none()));

        match events[0].1.read_data().expect("table map parses") {
            Some(EventData::TableMapEvent(t)) => {
                assert_eq!(t.table_id(), 77);
                assert_eq!(t.database_name(), "shop");
                assert_eq!(t.table_name(), "orders");
                assert_eq!(t.columns_count(), 2);
            }
            other => panic!("expected a table map, got {other:?}"),
        }
        match events[1].1.read_data().expect("rows parse") {
            Some(EventData::RowsEvent(RowsEventData::WriteRowsEvent(r))) => {
                assert_eq!(r.table_id(), 77);
                assert_eq!(r.num_columns(), 2);
                assert_eq!(
                    r.rows_data(),
                    &[0b00, 1, 0, 0, 0, 1, b'a', 0b10, 2, 0, 0, 0][..]
                );
            }
            other => panic!("expected write rows, got {other:?}"),
        }
        match events[2].1.read_data().expect("xid parses") {
            Some(EventData::XidEvent(x)) => assert_eq!(x.xid, 42),
            other => panic!("expected an XID, got {other:?}"),
        }
    }

    #[test]
    fn uncompressed_payload_is_read_as_is() {
        let inner = inner_stream();
        let outer = payload_event(COMPRESSION_NONE, inner.len() as u64, &inner);
        let types: Vec<u8> = collect(&outer)
            .expect("the payload decodes")
            .iter()
            .map(|(_, e)| e.header().event_type_raw())
            .collect();
        assert_eq!(types, [19, 30, 16]);
    }

    #[test]
    fn corrupt_zstd_stream_is_an_error_naming_decompression() {
        let inner = inner_stream();
        let mut compressed = zstd::encode_all(&inner[..], 3).expect("zstd compresses");
        // Keep the frame header, garble the compressed blocks.
        for b in compressed.iter_mut().skip(6) {
            *b ^= 0x5a;
        }
        let outer = payload_event(COMPRESSION_ZSTD, inner.len() as u64, &compressed);
        let e = collect(&outer).expect_err("a garbled payload must not decode");
        assert!(
            e.to_string().contains("cannot decompress the payload"),
            "{e}"
        );
    }

    #[test]
    fn not_zstd_at_all_is_an_error() {
        let outer = payload_event(COMPRESSION_ZSTD, 100, b"definitely not a zstd frame");
        let e = collect(&outer).expect_err("garbage must not decode");
        assert!(e.to_string().contains("decompress"), "{e}");
    }

    #[test]
    fn truncated_inner_event_is_an_error() {
        let full = inner_stream();
        let cut = &full[..full.len() - 3];
        let compressed = zstd::encode_all(cut, 3).expect("zstd compresses");
        let outer = payload_event(COMPRESSION_ZSTD, full.len() as u64, &compressed);
        let e = collect(&outer).expect_err("a cut event must not decode");
        assert!(
            e.to_string()
                .contains("ends inside the inner event at offset"),
            "{e}"
        );
    }

    #[test]
    fn size_mismatch_with_the_header_is_an_error() {
        let inner = inner_stream();
        let compressed = zstd::encode_all(&inner[..], 3).expect("zstd compresses");
        let outer = payload_event(COMPRESSION_ZSTD, inner.len() as u64 + 10, &compressed);
        let e = collect(&outer).expect_err("sizes disagree");
        assert!(e.to_string().contains("decompressed to"), "{e}");
    }

    #[test]
    fn impossible_inner_sizes_and_types_are_errors() {
        let mut inner = event_bytes(16, 0, &42u64.to_le_bytes());
        inner[9..13].copy_from_slice(&5u32.to_le_bytes());
        let e = collect(&zstd_event(&inner)).expect_err("size below a header");
        assert!(e.to_string().contains("impossible size"), "{e}");

        let mut huge = event_bytes(16, 0, &42u64.to_le_bytes());
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = collect(&zstd_event(&huge)).expect_err("size past the payload");
        assert!(e.to_string().contains("past the payload"), "{e}");

        let nested = event_bytes(40, 0, &[0]);
        let e = collect(&zstd_event(&nested)).expect_err("nested payload");
        assert!(e.to_string().contains("cannot occur inside"), "{e}");
    }

    #[test]
    fn bad_headers_are_errors() {
        let outer = payload_event(7, 0, b"");
        let e = collect(&outer).expect_err("unknown algorithm");
        assert!(
            e.to_string().contains("unknown compression algorithm 7"),
            "{e}"
        );

        // A header announcing more bytes than the event has.
        let mut body = Vec::new();
        field(FIELD_COMPRESSION, COMPRESSION_NONE, &mut body);
        field(FIELD_PAYLOAD_SIZE, 1000, &mut body);
        body.push(0);
        body.extend_from_slice(b"short");
        let raw = event_bytes(40, 4000, &body);
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        let outer = Event::read(&fde, raw.as_slice()).expect("well formed outside");
        let e = collect(&outer).expect_err("payload size past the event");
        assert!(e.to_string().contains("announces 1000 bytes"), "{e}");

        for body in [&[][..], &[2u8, 1][..], &[0xfb][..], &[1, 1, 5, 0][..]] {
            let raw = event_bytes(40, 4000, body);
            let outer = Event::read(&fde, raw.as_slice()).expect("well formed outside");
            assert!(collect(&outer).is_err(), "header {body:?} must be refused");
        }
    }
}

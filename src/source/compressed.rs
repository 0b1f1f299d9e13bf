//! MariaDB's compressed events (`log_bin_compress=ON`): QUERY_COMPRESSED (165) and the
//! compressed rows events (166–168 as rows v1, 169–171 as rows v2). In these only the
//! tail of the body is compressed: the query text, or the rows data after the table id,
//! flags, extra data, column count and column bitmap(s). MariaDB's compressed block
//! (`binlog_buf_uncompress` in the server): one byte with bit 7 set (compressed), bits
//! 4–6 the algorithm (0 = zlib, the only one) and bits 0–2 the number N (1–4) of bytes of
//! the uncompressed length; then that length, N bytes big-endian; then a zlib stream.
//!
//! This module owns turning such an event into the uncompressed event it stands for:
//! the same header (timestamp, server id, end position, flags) with the plain type and
//! the new size, the same head, the decompressed tail, and no checksum (the reader has
//! verified the compressed event's own checksum before it gets here). It does not
//! interpret the result: the reader handles it like any event, at the compressed event's
//! position. Bad input (a block not marked compressed, an unknown algorithm, a corrupt or
//! truncated zlib stream, a length that does not match, a head cut short) is a
//! `CompressedError` naming the problem, never a panic; the declared length is checked
//! before anything is handed to the `mysql` crate, whose event reader panics on a size
//! that does not match its input.

use super::payload::lenenc;
use flate2::{Decompress, FlushDecompress, Status};
use mysql::binlog::events::{BinlogEventFooter, Event};

const HEADER_LEN: usize = 19;
const QUERY: u8 = 2;
const WRITE_ROWS_V1: u8 = 23;
const WRITE_ROWS_V2: u8 = 30;
const QUERY_COMPRESSED: u8 = 165;
const WRITE_ROWS_COMPRESSED_V1: u8 = 166;
const UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
const DELETE_ROWS_COMPRESSED_V1: u8 = 168;
const WRITE_ROWS_COMPRESSED: u8 = 169;
const UPDATE_ROWS_COMPRESSED: u8 = 170;
const LAST_COMPRESSED: u8 = 171;
/// Query post-header: thread id (4), exec time (4), db length (1), error code (2),
/// status variables length (2).
const QUERY_POST_HEADER_LEN: usize = 13;
const QUERY_DB_LEN_AT: usize = 8;
const QUERY_STATUS_LEN_AT: usize = 11;
/// Rows post-header: table id (6), flags (2); rows v2 add the extra-data length.
const ROWS_POST_HEADER_LEN: usize = 8;
const BLOCK_COMPRESSED: u8 = 0x80;
const ALGORITHM_ZLIB: u8 = 0;
/// Output is grown by at most this much at a time, so that a corrupt length field
/// cannot make us allocate gigabytes before the stream proves it.
const GROW: usize = 1 << 20;

/// Why a compressed MariaDB event cannot be read.
pub type CompressedError = super::EventError;
use super::EventError;

/// The uncompressed event that `event` (a compressed MariaDB event read from the
/// session's stream) stands for. Its header keeps the compressed event's end position,
/// so its size no longer matches that position: callers take positions from `event`.
pub fn decompress(event: &Event) -> Result<Event, CompressedError> {
    let header = event.header();
    let (plain_type, body) = expand(header.event_type_raw(), event.data())?;
    let size = u32::try_from(HEADER_LEN + body.len()).map_err(|_| {
        EventError::new(format!(
            "the uncompressed event would be {} bytes, too large for a binlog event",
            HEADER_LEN + body.len()
        ))
    })?;
    let mut raw = Vec::with_capacity(HEADER_LEN + body.len());
    raw.extend_from_slice(&header.timestamp().to_le_bytes());
    raw.push(plain_type);
    raw.extend_from_slice(&header.server_id().to_le_bytes());
    raw.extend_from_slice(&size.to_le_bytes());
    raw.extend_from_slice(&header.log_pos().to_le_bytes());
    raw.extend_from_slice(&header.flags_raw().to_le_bytes());
    raw.extend_from_slice(&body);
    // The session's format description (post-header lengths) without checksums: the
    // bytes built here carry none.
    let fde = event
        .fde()
        .clone()
        .with_footer(BinlogEventFooter::default());
    Event::read(&fde, raw.as_slice())
        .map_err(|e| EventError::caused("cannot read the uncompressed event", e))
}

/// The plain event type and body (without checksum) for the body of a compressed event
/// of type `event_type`.
pub fn expand(event_type: u8, body: &[u8]) -> Result<(u8, Vec<u8>), CompressedError> {
    let (plain_type, head_len) = match event_type {
        QUERY_COMPRESSED => (QUERY, query_head_len(body)?),
        WRITE_ROWS_COMPRESSED_V1..=DELETE_ROWS_COMPRESSED_V1 => (
            event_type - WRITE_ROWS_COMPRESSED_V1 + WRITE_ROWS_V1,
            rows_head_len(body, false, event_type == UPDATE_ROWS_COMPRESSED_V1)?,
        ),
        WRITE_ROWS_COMPRESSED..=LAST_COMPRESSED => (
            event_type - WRITE_ROWS_COMPRESSED + WRITE_ROWS_V2,
            rows_head_len(body, true, event_type == UPDATE_ROWS_COMPRESSED)?,
        ),
        other => {
            return Err(EventError::new(format!(
                "event type {other} is not a compressed MariaDB event"
            )))
        }
    };
    // The head lengths above stop short of the end, so the block is never empty.
    let (head, block) = body.split_at(head_len);
    let mut out = head.to_vec();
    uncompress_block(block, &mut out)?;
    Ok((plain_type, out))
}

/// Where the compressed query text starts: after the post-header, the status
/// variables and the NUL-terminated default database.
fn query_head_len(body: &[u8]) -> Result<usize, CompressedError> {
    let post = body.get(..QUERY_POST_HEADER_LEN).ok_or_else(|| {
        EventError::new("the compressed query event is shorter than its post-header")
    })?;
    let db_len = usize::from(post[QUERY_DB_LEN_AT]);
    let status_len = usize::from(u16::from_le_bytes([
        post[QUERY_STATUS_LEN_AT],
        post[QUERY_STATUS_LEN_AT + 1],
    ]));
    let head = QUERY_POST_HEADER_LEN + status_len + db_len + 1;
    if head >= body.len() {
        return Err(EventError::new(format!(
            "the compressed query event ends inside its status variables or database name \
             ({} bytes, {head} expected before the query)",
            body.len()
        )));
    }
    Ok(head)
}

/// Where the compressed rows data starts: after the post-header, the extra data (v2),
/// the column count and the column bitmap(s).
fn rows_head_len(body: &[u8], v2: bool, update: bool) -> Result<usize, CompressedError> {
    let short = || EventError::new("the compressed rows event ends before its rows data");
    let mut at = ROWS_POST_HEADER_LEN;
    if v2 {
        let len = body.get(at..at + 2).ok_or_else(short)?;
        let extra = usize::from(u16::from_le_bytes([len[0], len[1]]));
        // The length counts its own two bytes.
        if extra < 2 {
            return Err(EventError::new(format!(
                "the compressed rows event has an extra-data length of {extra}"
            )));
        }
        at += extra;
    }
    let mut rest = body.get(at..).ok_or_else(short)?;
    let before = rest.len();
    let columns = lenenc(&mut rest)
        .ok_or_else(|| EventError::new("the compressed rows event has a malformed column count"))?;
    at += before - rest.len();
    let bitmap = usize::try_from(columns.div_ceil(8)).map_err(|_| short())?;
    at = at
        .checked_add(if update {
            bitmap.saturating_mul(2)
        } else {
            bitmap
        })
        .ok_or_else(short)?;
    if at >= body.len() {
        return Err(short());
    }
    Ok(at)
}

/// Appends the decompressed content of one MariaDB compressed block to `out`.
pub fn uncompress_block(block: &[u8], out: &mut Vec<u8>) -> Result<(), CompressedError> {
    let (&flags, rest) = block
        .split_first()
        .ok_or_else(|| EventError::new("the compressed block is empty"))?;
    if flags & BLOCK_COMPRESSED == 0 {
        return Err(EventError::new(format!(
            "the compressed block is not marked compressed (first byte {flags:#04x})"
        )));
    }
    let algorithm = (flags >> 4) & 0x07;
    if algorithm != ALGORITHM_ZLIB {
        return Err(EventError::new(format!(
            "the compressed block uses compression algorithm {algorithm}; MariaDB writes only \
             0 (zlib)"
        )));
    }
    let len_len = usize::from(flags & 0x07);
    if !(1..=4).contains(&len_len) {
        return Err(EventError::new(format!(
            "the compressed block's length field has {len_len} bytes (1 to 4 expected)"
        )));
    }
    let len_bytes = rest
        .get(..len_len)
        .ok_or_else(|| EventError::new("the compressed block ends inside its length field"))?;
    let declared = len_bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    if declared == 0 {
        return Err(EventError::new(
            "the compressed block declares an uncompressed length of 0",
        ));
    }
    let stream = &rest[len_len..];

    let start = out.len();
    let mut z = Decompress::new(true);
    loop {
        let produced = out.len() - start;
        if produced > declared {
            return Err(EventError::new(format!(
                "the compressed block decompresses to more than the {declared} bytes it declares"
            )));
        }
        // One byte more than declared, so that a longer stream is noticed.
        out.reserve((declared - produced + 1).min(GROW));
        let (seen_in, seen_out) = (z.total_in(), z.total_out());
        let input = usize::try_from(seen_in)
            .ok()
            .and_then(|i| stream.get(i..))
            .unwrap_or_default();
        let status = z
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|e| EventError::caused("the compressed block's zlib stream is corrupt", e))?;
        if status == Status::StreamEnd {
            break;
        }
        if z.total_in() == seen_in && z.total_out() == seen_out {
            return Err(EventError::new(format!(
                "the compressed block's zlib stream is truncated (after {} of {declared} bytes)",
                out.len() - start
            )));
        }
    }
    let produced = out.len() - start;
    if produced != declared {
        return Err(EventError::new(format!(
            "the compressed block decompresses to {produced} bytes but declares {declared}"
        )));
    }
    Ok(())
}

/// Builders of MariaDB compressed blocks and events for tests here and in the reader.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::Write;

    /// A block as MariaDB writes it: flags, big-endian length in `len_len` bytes, zlib.
    pub(crate) fn block(data: &[u8], len_len: usize) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).expect("zlib compresses");
        let stream = z.finish().expect("zlib finishes");
        let mut v = vec![0x80 | len_len as u8];
        v.extend_from_slice(&(data.len() as u64).to_be_bytes()[8 - len_len..]);
        v.extend(stream);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::testing::block;
    use super::*;
    use crate::source::payload::testing::{event_bytes, table_map, write_rows};
    use mysql::binlog::events::{EventData, FormatDescriptionEvent, RowsEventData};
    use mysql::binlog::BinlogVersion;

    fn uncompress(b: &[u8]) -> Result<Vec<u8>, CompressedError> {
        let mut out = b"head".to_vec();
        uncompress_block(b, &mut out)?;
        Ok(out)
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"pikachu rows "[i % 13] ^ (i / 97) as u8)
            .collect()
    }

    #[test]
    fn good_blocks_decompress_after_the_head_with_every_length_width() {
        for (n, len_len) in [(5, 1), (300, 2), (70_000, 3), (70_000, 4)] {
            let data = text(n);
            let out = uncompress(&block(&data, len_len)).expect("a good block decompresses");
            assert_eq!(&out[..4], b"head");
            assert_eq!(
                &out[4..],
                &data[..],
                "{n} bytes with a {len_len}-byte length"
            );
        }
    }

    #[test]
    fn a_block_with_another_algorithm_is_refused() {
        let mut b = block(b"some query text", 1);
        b[0] |= 0x10;
        let e = uncompress(&b).expect_err("algorithm 1 is not zlib");
        assert!(e.to_string().contains("algorithm 1"), "{e}");
    }

    #[test]
    fn a_block_not_marked_compressed_is_refused() {
        let mut b = block(b"some query text", 1);
        b[0] &= 0x7f;
        let e = uncompress(&b).expect_err("bit 7 clear");
        assert!(e.to_string().contains("not marked compressed"), "{e}");
    }

    #[test]
    fn bad_length_fields_are_refused() {
        let good = block(b"some query text", 1);
        for flags in [0x80u8, 0x85] {
            let mut b = good.clone();
            b[0] = flags;
            let e = uncompress(&b).expect_err("length width 0 or 5");
            assert!(e.to_string().contains("length field"), "{e}");
        }
        let e = uncompress(&[0x84, 0, 1]).expect_err("cut inside the length");
        assert!(e.to_string().contains("inside its length field"), "{e}");
        let e = uncompress(&[]).expect_err("empty");
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn truncated_streams_are_refused_wherever_they_are_cut() {
        let data = text(5000);
        let b = block(&data, 2);
        for cut in [b.len() - 1, b.len() - 4, b.len() / 2, 5, 3] {
            let e = uncompress(&b[..cut]).expect_err("a truncated block");
            assert!(
                e.to_string().contains("truncated") || e.to_string().contains("corrupt"),
                "cut at {cut}: {e}"
            );
        }
    }

    #[test]
    fn a_declared_length_that_does_not_match_is_refused() {
        let data = text(1000);
        let mut b = block(&data, 2);
        b[1..3].copy_from_slice(&999u16.to_be_bytes());
        let e = uncompress(&b).expect_err("one byte more than declared");
        assert!(
            e.to_string().contains("999") && e.to_string().contains("declares"),
            "{e}"
        );
        b[1..3].copy_from_slice(&1001u16.to_be_bytes());
        let e = uncompress(&b).expect_err("one byte less than declared");
        assert!(
            e.to_string().contains("1000 bytes but declares 1001"),
            "{e}"
        );
        b[1..3].copy_from_slice(&0u16.to_be_bytes());
        assert!(uncompress(&b).is_err(), "a declared length of 0");
    }

    #[test]
    fn a_corrupt_stream_is_refused() {
        let mut b = block(&text(1000), 2);
        let mid = b.len() / 2;
        b[3] ^= 0xff; // the zlib header
        b[mid] ^= 0x55;
        let e = uncompress(&b).expect_err("corrupt zlib");
        assert!(e.to_string().contains("corrupt"), "{e}");
    }

    /// Rows v1 body of table 77 split after its head, the tail compressed.
    fn compressed_rows(v2: bool, update: bool) -> (Vec<u8>, Vec<u8>) {
        let mut head = Vec::new();
        head.extend_from_slice(&77u64.to_le_bytes()[..6]);
        head.extend_from_slice(&1u16.to_le_bytes());
        if v2 {
            head.extend_from_slice(&5u16.to_le_bytes());
            head.extend_from_slice(&[1, 2, 3]); // extra data
        }
        head.push(2);
        head.push(0b11);
        if update {
            head.push(0b11);
        }
        let rows = [0b00, 1, 0, 0, 0, 1, b'a', 0b10, 2, 0, 0, 0];
        let mut plain = head.clone();
        plain.extend_from_slice(&rows);
        head.extend(block(&rows, 1));
        (head, plain)
    }

    #[test]
    fn rows_events_of_every_compressed_type_expand_to_their_plain_type() {
        for (t, plain_type) in [
            (166, 23),
            (167, 24),
            (168, 25),
            (169, 30),
            (170, 31),
            (171, 32),
        ] {
            let (v2, update) = (t >= 169, t == 167 || t == 170);
            let (body, plain) = compressed_rows(v2, update);
            let (got_type, got) = expand(t, &body).expect("the rows event expands");
            assert_eq!(got_type, plain_type, "type {t}");
            assert_eq!(got, plain, "type {t}");
        }
    }

    #[test]
    fn a_head_cut_short_is_refused_not_a_panic() {
        let (body, _) = compressed_rows(true, true);
        for cut in 0..15 {
            assert!(expand(170, &body[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = body.clone();
        bad[8..10].copy_from_slice(&1u16.to_le_bytes());
        assert!(expand(170, &bad).is_err(), "extra-data length 1");
        assert!(expand(165, &[0; 12]).is_err(), "query post-header cut");
        assert!(expand(23, &body).is_err(), "not a compressed type");
    }

    fn stream_event(t: u8, log_pos: u32, body: &[u8]) -> Event {
        let mut raw = event_bytes(t, log_pos, body);
        // As the stream delivers it: with the server's CRC32 at the end.
        let size = (raw.len() + 4) as u32;
        raw[9..13].copy_from_slice(&size.to_le_bytes());
        let sum = crc32(&raw);
        raw.extend_from_slice(&sum.to_le_bytes());
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4).with_footer(
            BinlogEventFooter::new(mysql::binlog::BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32),
        );
        Event::read(&fde, raw.as_slice()).expect("the test event is well formed")
    }

    fn crc32(b: &[u8]) -> u32 {
        let mut h = flate2::Crc::new();
        h.update(b);
        h.sum()
    }

    #[test]
    fn a_compressed_write_rows_event_reads_as_write_rows_with_the_same_header() {
        let mut body = write_rows()[..12].to_vec(); // table id, flags, extra data, columns, bitmap
        body.extend(block(&write_rows()[12..], 1));
        let outer = stream_event(169, 4321, &body);
        let plain = decompress(&outer).expect("the event decompresses");
        let h = plain.header();
        assert_eq!(h.event_type_raw(), 30);
        assert_eq!(h.log_pos(), 4321, "the end position is kept");
        assert_eq!(h.timestamp(), outer.header().timestamp());
        assert_eq!(h.server_id(), outer.header().server_id());
        assert_eq!(h.event_size() as usize, HEADER_LEN + write_rows().len());
        assert!(plain.checksum().is_none());
        assert_eq!(plain.data(), &write_rows()[..]);
        match plain.read_data().expect("rows parse") {
            Some(EventData::RowsEvent(RowsEventData::WriteRowsEvent(r))) => {
                assert_eq!(r.table_id(), 77);
                assert_eq!(r.rows_data().len(), 12);
            }
            other => panic!("expected write rows, got {other:?}"),
        }
        // Its table map is untouched by compression; both parse with the same description.
        assert!(Event::read(plain.fde(), event_bytes(19, 0, &table_map()).as_slice()).is_ok());
    }

    #[test]
    fn a_compressed_query_event_reads_as_the_query() {
        let query = "ALTER TABLE orders ADD COLUMN note2 VARCHAR(40)";
        let mut body = Vec::new();
        body.extend_from_slice(&7u32.to_le_bytes()); // thread id
        body.extend_from_slice(&0u32.to_le_bytes()); // exec time
        body.push(4); // db length
        body.extend_from_slice(&0u16.to_le_bytes()); // error code
        body.extend_from_slice(&3u16.to_le_bytes()); // status variables length
        body.extend_from_slice(&[0, 0, 0]); // Q_FLAGS2_CODE, shortened
        body.extend_from_slice(b"shop\0");
        let head = body.len();
        body.extend(block(query.as_bytes(), 1));
        let (t, plain) = expand(165, &body).expect("the query expands");
        assert_eq!(t, 2);
        assert_eq!(&plain[head..], query.as_bytes());

        // Real status variables, so that the crate's parser accepts them.
        body[11..13].copy_from_slice(&0u16.to_le_bytes());
        body.drain(13..16);
        let event = decompress(&stream_event(165, 999, &body)).expect("the event decompresses");
        match event.read_data().expect("query parses") {
            Some(EventData::QueryEvent(q)) => {
                assert_eq!(q.query(), query);
                assert_eq!(q.schema(), "shop");
            }
            other => panic!("expected a query, got {other:?}"),
        }
    }
}

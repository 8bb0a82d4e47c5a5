//! gzip that uses both cores. We write a file as a series of independent gzip members of
//! `CHUNK_BYTES` each (any gzip reader, nibabel and FreeSurfer included, reads concatenated
//! members as one stream), and each member's header carries an `FEXTRA` subfield `VP` with the
//! member's total length, like BGZF does with `BC`. Our reader uses those lengths to inflate the
//! members in parallel; files from other tools are inflated sequentially.

use rayon::prelude::*;
use std::io::{Read, Write};

const CHUNK_BYTES: usize = 4 << 20;
const HEADER_LEN: usize = 10 + 2 + 8;

/// Compresses `data` into indexed gzip members in parallel.
pub fn compress(data: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    let members: Vec<std::io::Result<Vec<u8>>> = data
        .par_chunks(CHUNK_BYTES.max(1))
        .map(|chunk| {
            let mut out = Vec::with_capacity(chunk.len() / 2 + 64);
            out.extend_from_slice(&[0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 255]);
            out.extend_from_slice(&8u16.to_le_bytes());
            out.extend_from_slice(b"VP");
            out.extend_from_slice(&4u16.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // member length, filled in below
            let mut enc =
                flate2::write::DeflateEncoder::new(out, flate2::Compression::new(level.min(9)));
            enc.write_all(chunk)?;
            let mut out = enc.finish()?;
            let mut crc = flate2::Crc::new();
            crc.update(chunk);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            let len = out.len() as u32;
            out[16..20].copy_from_slice(&len.to_le_bytes());
            Ok(out)
        })
        .collect();
    let mut total = Vec::with_capacity(
        members
            .iter()
            .map(|m| m.as_ref().map_or(0, |v| v.len()))
            .sum(),
    );
    for m in members {
        total.extend_from_slice(&m?);
    }
    if data.is_empty() {
        let mut enc =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level.min(9)));
        enc.write_all(&[])?;
        return enc.finish();
    }
    Ok(total)
}

/// Splits a stream into our indexed members, or `None` when it is not entirely made of them.
fn indexed_members(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut members = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = bytes.get(at..at + HEADER_LEN)?;
        if h[0] != 0x1f
            || h[1] != 0x8b
            || h[2] != 8
            || h[3] != 0x04
            || h[12] != b'V'
            || h[13] != b'P'
        {
            return None;
        }
        let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
        if len < HEADER_LEN + 8 {
            return None;
        }
        members.push(bytes.get(at..at + len)?);
        at += len;
    }
    Some(members)
}

/// Inflates a whole gzip stream (one or many members). Our indexed files are inflated in
/// parallel with each member's CRC checked.
pub fn decompress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    if let Some(members) = indexed_members(bytes) {
        let sizes: Vec<usize> = members
            .iter()
            .map(|m| {
                let n = m.len();
                u32::from_le_bytes([m[n - 4], m[n - 3], m[n - 2], m[n - 1]]) as usize
            })
            .collect();
        let mut out = vec![0u8; sizes.iter().sum()];
        let mut slices = Vec::with_capacity(members.len());
        let mut rest = out.as_mut_slice();
        for &s in &sizes {
            let (a, b) = rest.split_at_mut(s);
            slices.push(a);
            rest = b;
        }
        members
            .par_iter()
            .zip(slices.into_par_iter())
            .try_for_each(|(m, dst)| -> std::io::Result<()> {
                let n = m.len();
                let mut dec = flate2::read::DeflateDecoder::new(&m[HEADER_LEN..n - 8]);
                dec.read_exact(dst)?;
                let mut crc = flate2::Crc::new();
                crc.update(dst);
                let want = u32::from_le_bytes([m[n - 8], m[n - 7], m[n - 6], m[n - 5]]);
                if crc.sum() != want {
                    return Err(bad("gzip CRC mismatch"));
                }
                Ok(())
            })?;
        return Ok(out);
    }
    let n = bytes.len();
    let hint = if n >= 4 {
        u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]) as usize
    } else {
        0
    };
    let mut out = Vec::with_capacity(hint.max(n));
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_standard_readers_agree() {
        let data: Vec<u8> = (0..(CHUNK_BYTES * 2 + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let gz = compress(&data, 1).unwrap();
        assert_eq!(decompress(&gz).unwrap(), data);
        // A plain multi-member reader sees the same bytes.
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, data);
        assert_eq!(
            decompress(&compress(&[], 1).unwrap()).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn corruption_is_detected() {
        let data: Vec<u8> = (0..100_000).map(|i| (i % 13) as u8).collect();
        let mut gz = compress(&data, 6).unwrap();
        let n = gz.len();
        gz[n - 6] ^= 1; // CRC byte
        assert!(decompress(&gz).is_err());
    }
}

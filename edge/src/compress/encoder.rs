//! One response body's encoder (gzip, brotli or zstd), fed chunk by chunk.
//!
//! Each chunk is flushed (gzip's sync flush, brotli's and zstd's flush): what the upstream
//! sent is decodable by the client at once, so streams such as server-sent events are not
//! held back; it costs a few bytes per chunk. The last chunk finishes the stream instead.

use std::io::Write;

use bytes::Bytes;
use policies::Coding;

/// Brotli's window (log2): 512 KiB of memory per answer, as Pingora's own compressor; the
/// default 4 MiB gains little on API answers.
const BROTLI_WINDOW: u32 = 19;
/// zstd's window (log2), for the same reason: its default at levels 3-9 (2-8 MiB, the
/// size unknown up front) would hold several MiB per answer being encoded.
const ZSTD_WINDOW: u32 = 19;
/// Brotli's internal buffer.
const BROTLI_BUFFER: usize = 4096;
/// Most output bytes reserved ahead of a chunk.
const MAX_RESERVE: usize = 16 * 1024;

/// The encoder of one answer.
pub struct Encoder {
    inner: Inner,
    /// Its share of the encoders' memory budget, returned with it.
    _reserved: super::Reservation,
}

enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// Finished (or failed): nothing more is written.
    Done,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.inner {
            Inner::Gzip(_) => "gzip",
            Inner::Br(_) => "br",
            Inner::Zstd(_) => "zstd",
            Inner::Done => "done",
        };
        f.debug_struct("Encoder").field("coding", &name).finish()
    }
}

impl Encoder {
    /// An encoder for `coding` at `level` (1-9, see `policies::compression::LEVELS`),
    /// holding `reserved` while it lives. `Err`: zstd could not set up its context (out of
    /// memory).
    pub fn new(
        coding: Coding,
        level: u32,
        reserved: super::Reservation,
    ) -> std::io::Result<Encoder> {
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            Coding::Br => Inner::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                level,
                BROTLI_WINDOW,
            ))),
            Coding::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(
                    Vec::new(),
                    i32::try_from(level).unwrap_or(3),
                )?;
                e.window_log(ZSTD_WINDOW)?;
                Inner::Zstd(e)
            }
        };
        Ok(Encoder {
            inner,
            _reserved: reserved,
        })
    }

    /// Encodes `input`; with `end`, finishes the stream. Returns what is ready for the
    /// client (all of `input`'s encoding, flushed). `Err` (an encoder's own failure, not
    /// expected when writing to memory) leaves the encoder finished.
    pub fn encode(&mut self, input: &[u8], end: bool) -> std::io::Result<Bytes> {
        let result = self.write(input, end);
        if end || result.is_err() {
            self.inner = Inner::Done;
        }
        result
    }

    fn write(&mut self, input: &[u8], end: bool) -> std::io::Result<Bytes> {
        let reserve = input.len().min(MAX_RESERVE);
        match &mut self.inner {
            Inner::Gzip(e) => {
                e.get_mut().reserve(reserve);
                e.write_all(input)?;
                if end {
                    e.try_finish()?;
                } else {
                    e.flush()?;
                }
                Ok(Bytes::from(std::mem::take(e.get_mut())))
            }
            Inner::Br(e) => {
                e.get_mut().reserve(reserve);
                e.write_all(input)?;
                if !end {
                    e.flush()?;
                    return Ok(Bytes::from(std::mem::take(e.get_mut())));
                }
                let Inner::Br(e) = std::mem::replace(&mut self.inner, Inner::Done) else {
                    return Ok(Bytes::new());
                };
                // `into_inner` writes the last block.
                Ok(Bytes::from(e.into_inner()))
            }
            Inner::Zstd(e) => {
                e.get_mut().reserve(reserve);
                e.write_all(input)?;
                if !end {
                    e.flush()?;
                    return Ok(Bytes::from(std::mem::take(e.get_mut())));
                }
                let Inner::Zstd(e) = std::mem::replace(&mut self.inner, Inner::Done) else {
                    return Ok(Bytes::new());
                };
                e.finish().map(Bytes::from)
            }
            Inner::Done => Ok(Bytes::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn decode(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .expect("gzip");
            }
            Coding::Br => {
                brotli::Decompressor::new(data, 4096)
                    .read_to_end(&mut out)
                    .expect("br");
            }
            Coding::Zstd => out = zstd::decode_all(data).expect("zstd"),
        }
        out
    }

    #[test]
    fn every_chunk_is_decodable_at_once_and_the_whole_round_trips() {
        let chunks: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("{{\"event\":{i},\"data\":\"{}\"}}\n", "x".repeat(300)).into_bytes())
            .collect();
        for coding in Coding::ALL {
            let reserved = super::super::Reservation::take(coding).expect("budget");
            let mut e = Encoder::new(coding, 5, reserved).expect("encoder");
            let mut sent = Vec::new();
            let mut plain = Vec::new();
            for chunk in &chunks {
                sent.extend_from_slice(&e.encode(chunk, false).expect("encode"));
                plain.extend_from_slice(chunk);
                // What was sent so far decodes to everything written so far.
                let partial = partial_decode(coding, &sent);
                assert_eq!(partial, plain, "{coding:?}");
            }
            sent.extend_from_slice(&e.encode(b"", true).expect("finish"));
            assert_eq!(decode(coding, &sent), plain, "{coding:?}");
            assert!(sent.len() < plain.len() / 3, "{coding:?}: {}", sent.len());
            assert!(e.encode(b"more", true).expect("done").is_empty());
        }
    }

    /// Decodes a stream that is not finished yet (its end missing).
    fn partial_decode(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let mut reader: Box<dyn Read> = match coding {
            Coding::Gzip => Box::new(flate2::read::GzDecoder::new(data)),
            Coding::Br => Box::new(brotli::Decompressor::new(data, 4096)),
            Coding::Zstd => Box::new(zstd::stream::read::Decoder::new(data).expect("zstd")),
        };
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }
}

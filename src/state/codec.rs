//! A small binary codec for checkpoints: little-endian integers, length-prefixed bytes.
//!
//! Hand-written rather than derived so the format is explicit and versioned in one place
//! (`checkpoint`), and so the fixed-size baseline arrays are copied as blocks: a checkpoint of
//! 100k accounts must be written in well under 200 ms.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("checkpoint is truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("checkpoint holds an invalid value at offset {offset}: {what}")]
    Invalid { offset: usize, what: &'static str },
}

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Writer {
        Writer { buf: Vec::with_capacity(n) }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
    }
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub fn opt_i64(&mut self, v: Option<i64>) {
        self.bool(v.is_some());
        self.i64(v.unwrap_or(0));
    }
    /// A byte array that is mostly zeros (an account is idle most hours of its week): a bitmap
    /// of the non-zero positions, then those bytes. Works 8 bytes at a time, since whole idle
    /// stretches are the common case.
    pub fn sparse(&mut self, v: &[u8]) {
        assert!(v.len() <= 256 && v.len().is_multiple_of(8), "sparse arrays are whole words, at most 256 bytes");
        let mut bitmap = [0u8; 32];
        let start = self.buf.len();
        self.buf.extend_from_slice(&bitmap[..v.len() / 8]);
        for (i, chunk) in v.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
            if word == 0 {
                continue;
            }
            for (bit, &b) in chunk.iter().enumerate() {
                if b != 0 {
                    bitmap[i] |= 1 << bit;
                    self.buf.push(b);
                }
            }
        }
        self.buf[start..start + v.len() / 8].copy_from_slice(&bitmap[..v.len() / 8]);
    }
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CodecError::Truncated { offset: self.pos, needed: n })?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn invalid(&self, what: &'static str) -> CodecError {
        CodecError::Invalid { offset: self.pos, what }
    }
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, CodecError> {
        self.array().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        self.array().map(u64::from_le_bytes)
    }
    pub fn i8(&mut self) -> Result<i8, CodecError> {
        Ok(self.u8()? as i8)
    }
    pub fn i32(&mut self) -> Result<i32, CodecError> {
        self.array().map(i32::from_le_bytes)
    }
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        self.array().map(i64::from_le_bytes)
    }
    pub fn f32(&mut self) -> Result<f32, CodecError> {
        self.array().map(f32::from_le_bytes)
    }
    pub fn bool(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid("boolean")),
        }
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string(&mut self) -> Result<String, CodecError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.invalid("string"))
    }
    pub fn sparse<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let bitmap = self.take(N.div_ceil(8))?;
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            if bitmap[i / 8] >> (i % 8) & 1 == 1 {
                *slot = self.u8()?;
                if *slot == 0 {
                    return Err(self.invalid("zero in a sparse array"));
                }
            }
        }
        Ok(out)
    }
    pub fn opt_i64(&mut self) -> Result<Option<i64>, CodecError> {
        let some = self.bool()?;
        let v = self.i64()?;
        Ok(some.then_some(v))
    }
    /// A length for a collection, sanity-checked against what is left so a corrupt count
    /// cannot make us allocate gigabytes.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_bytes.max(1)) > self.buf.len() - self.pos {
            return Err(self.invalid("collection length"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let mut w = Writer::default();
        w.u8(7);
        w.i64(-5);
        w.f32(1.5);
        w.str("héllo");
        w.opt_i64(Some(9));
        w.opt_i64(None);
        let mut week = [0u8; 168];
        week[3] = 7;
        week[167] = 255;
        w.sparse(&week);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.i64(), Ok(-5));
        assert_eq!(r.f32(), Ok(1.5));
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.opt_i64(), Ok(Some(9)));
        assert_eq!(r.opt_i64(), Ok(None));
        assert_eq!(r.sparse::<168>(), Ok(week));
        assert!(r.is_empty());
        assert_eq!(w.buf.len(), 1 + 8 + 4 + 4 + 6 + 9 + 9 + 21 + 2);
        let mut short = Reader::new(&w.buf[..3]);
        short.u8().unwrap();
        assert!(matches!(short.i64(), Err(CodecError::Truncated { offset: 1, needed: 8 })));
        let mut huge = Reader::new(&[0xff, 0xff, 0xff, 0x7f]);
        assert!(huge.count(1).is_err());
    }
}

//! Primitive encodings shared by every binary object: unsigned LEB128 varints, zigzag signed
//! varints, length-prefixed byte strings and fixed ids. The reader never panics and never
//! allocates more than the bytes it actually holds, so a hostile length cannot exhaust memory.

use crate::id::{ID_LEN, Id};

/// A decoding failure: what was being read when the bytes ran out or made no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

pub type WireResult<T> = std::result::Result<T, WireError>;

fn err<T>(what: impl Into<String>) -> WireResult<T> {
    Err(WireError(what.into()))
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn put_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor over an encoded object.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn take(&mut self, n: usize, what: &str) -> WireResult<&'a [u8]> {
        if n > self.remaining() {
            return err(format!("{what}: needs {n} bytes, {} left", self.remaining()));
        }
        let slice = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    pub fn u8(&mut self, what: &str) -> WireResult<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub fn varint(&mut self, what: &str) -> WireResult<u64> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return err(format!("{what}: varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        err(format!("{what}: varint longer than 10 bytes"))
    }

    /// A varint that must not exceed `max` (a count, a length, a size).
    pub fn bounded(&mut self, max: u64, what: &str) -> WireResult<u64> {
        let value = self.varint(what)?;
        if value > max {
            return err(format!("{what}: {value} exceeds the limit {max}"));
        }
        Ok(value)
    }

    /// A count of items, each at least `min_item_len` bytes: rejected if the remaining bytes
    /// cannot possibly hold that many, so callers may pre-allocate safely.
    pub fn count(&mut self, min_item_len: usize, what: &str) -> WireResult<usize> {
        let max = (self.remaining() / min_item_len.max(1)) as u64;
        Ok(self.bounded(max, what)? as usize)
    }

    pub fn signed(&mut self, what: &str) -> WireResult<i64> {
        let raw = self.varint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub fn bytes(&mut self, what: &str) -> WireResult<&'a [u8]> {
        let len = self.bounded(self.remaining() as u64, what)? as usize;
        self.take(len, what)
    }

    pub fn id(&mut self, what: &str) -> WireResult<Id> {
        let bytes = self.take(ID_LEN, what)?;
        Ok(Id(bytes.try_into().map_err(|_| WireError(what.into()))?))
    }

    pub fn u32_le(&mut self, what: &str) -> WireResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn finish(&self, what: &str) -> WireResult<()> {
        if self.remaining() != 0 {
            return err(format!("{what}: {} unexpected trailing bytes", self.remaining()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v: u64, s: i64) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            put_signed(&mut out, s);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.varint("v").unwrap(), v);
            prop_assert_eq!(r.signed("s").unwrap(), s);
            prop_assert!(r.finish("end").is_ok());
        }

        #[test]
        fn reader_never_panics(data: Vec<u8>) {
            let mut r = Reader::new(&data);
            let _ = r.varint("a");
            let _ = r.bytes("b");
            let _ = r.count(40, "c");
            let _ = r.id("d");
        }
    }

    #[test]
    fn rejects_overlong_and_oversized_varints() {
        assert!(Reader::new(&[0xff; 11]).varint("x").is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).varint("x").is_err());
        let mut out = Vec::new();
        put_varint(&mut out, 1000);
        assert!(Reader::new(&out).count(1, "n").is_err(), "1000 items cannot fit in 0 bytes");
    }
}

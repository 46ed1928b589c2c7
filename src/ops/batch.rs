//! Groups a restore's files into batches fetched with one read each.
//!
//! A backup writes files one after another, so consecutive files' chunks usually lie back to
//! back in one pack. On object storage every request has a cost of its own (a round trip, and
//! on the server a metadata lookup), so a remote restore fetches such a run of files with one
//! ranged read instead of one per file. Invariant: a batch's bytes are only a transport; every
//! chunk is still decoded and checked against its id before it is written.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::store::FileKind;

/// Where one file's chunks lie when they are back to back in one pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub pack: Id,
    pub start: u64,
    pub end: u64,
}

/// Consecutive files (`first..first + count` in the caller's order) and the span they cover
/// together, if they share one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub first: usize,
    pub count: usize,
    pub span: Option<Span>,
}

/// The span of a file's chunks, or `None` if they are not back to back in one pack.
pub fn span_of(repo: &Repository, chunks: &[Id]) -> Option<Span> {
    let mut span: Option<Span> = None;
    for chunk in chunks {
        let loc = repo.index().lookup(chunk)?;
        let (start, len) = (u64::from(loc.entry.offset), u64::from(loc.entry.stored_len));
        span = match span {
            None => Some(Span { pack: loc.pack, start, end: start + len }),
            Some(s) if s.pack == loc.pack && s.end == start => Some(Span { end: s.end + len, ..s }),
            Some(_) => return None,
        };
    }
    span
}

/// Splits files, given by their spans in restore order, into batches of at most `max_bytes`.
pub fn plan(spans: &[Option<Span>], max_bytes: u64) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        if let (Some(last), Some(next)) = (batches.last_mut(), span)
            && let Some(joined) = last.span
            && joined.pack == next.pack
            && joined.end == next.start
            && next.end - joined.start <= max_bytes
        {
            last.count += 1;
            last.span = Some(Span { end: next.end, ..joined });
            continue;
        }
        batches.push(Batch { first: i, count: 1, span: *span });
    }
    batches
}

/// A batch's stored bytes, read once.
pub struct Prefetched {
    span: Span,
    bytes: Vec<u8>,
}

impl Prefetched {
    pub fn read(repo: &Repository, span: Span) -> Result<Prefetched> {
        let bytes =
            repo.backend().read_range(FileKind::Pack, &span.pack.to_hex(), span.start, span.end - span.start)?;
        Ok(Prefetched { span, bytes })
    }

    /// The chunk's plaintext, decoded and verified.
    pub fn chunk(&self, repo: &Repository, id: &Id) -> Result<Vec<u8>> {
        let loc = repo.index().lookup(id).ok_or_else(|| Error::Missing { kind: "blob", name: id.to_hex() })?;
        let from = u64::from(loc.entry.offset).checked_sub(self.span.start);
        let stored = from
            .filter(|_| loc.pack == self.span.pack)
            .and_then(|from| usize::try_from(from).ok())
            .and_then(|from| self.bytes.get(from..from.checked_add(loc.entry.stored_len as usize)?))
            .ok_or_else(|| Error::corrupt("pack", self.span.pack.to_hex(), "chunk outside the batch read for it"))?;
        repo.decode_blob(&loc.entry, stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(pack: u8, start: u64, end: u64) -> Option<Span> {
        Some(Span { pack: Id([pack; 32]), start, end })
    }

    #[test]
    fn joins_neighbours_in_one_pack_up_to_the_limit() {
        let spans = [span(1, 0, 10), span(1, 10, 25), span(1, 25, 40), span(2, 40, 50), None, span(2, 50, 60)];
        let batches = plan(&spans, 30);
        let shape: Vec<(usize, usize)> = batches.iter().map(|b| (b.first, b.count)).collect();
        // 0+1 join (25 bytes); 2 would make 40 > 30; pack 2 starts anew; None stands alone and
        // breaks the run, so 5 does not join 3 across it.
        assert_eq!(shape, vec![(0, 2), (2, 1), (3, 1), (4, 1), (5, 1)]);
        assert_eq!(batches[0].span, span(1, 0, 25));
        assert_eq!(batches[3].span, None);
    }

    #[test]
    fn a_gap_or_another_pack_starts_a_new_batch() {
        let spans = [span(1, 0, 10), span(1, 11, 20), span(3, 20, 30)];
        assert_eq!(plan(&spans, 1 << 20).len(), 3);
    }
}

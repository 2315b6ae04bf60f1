//! Decoding a poll batch on several threads, order kept.
//!
//! Decoding is about half the work per message and needs nothing but the bytes, while the
//! engine must see events one at a time in partition order. So a batch is cut into contiguous
//! slices, each decoded on its own scoped thread (the events borrow from the messages, which
//! the pipeline holds until the batch is handled), and the pieces are handed on in order.
//! Enrichment (`crate::input::enrich`) runs here too, on the same threads, right after each
//! message is decoded: it is the one place on the service's data path where it happens.

use crate::config::InputFormat;
use crate::input::enrich::Enricher;
use crate::input::event::{AuditEvent, DecodeError};
use crate::input::formats::decode_as;

/// Below this many messages per thread, starting a thread costs more than it saves.
const MIN_MESSAGES_PER_THREAD: usize = 512;

pub type Decoded<'a> = Result<AuditEvent<'a>, DecodeError>;

/// Decode `inputs` (format and bytes of each message) on up to `threads` threads, the calling
/// one included, and enrich each event when there is an `enricher`; one result per input, in
/// input order.
pub fn decode_batch<'a>(
    inputs: &[(InputFormat, &'a [u8])],
    enricher: Option<&'a Enricher>,
    max_bytes: usize,
    threads: usize,
) -> impl Iterator<Item = Decoded<'a>> {
    let threads = threads.min(inputs.len() / MIN_MESSAGES_PER_THREAD).max(1);
    let per_thread = inputs.len().div_ceil(threads).max(1);
    let mut slices = inputs.chunks(per_thread);
    let first = slices.next().unwrap_or_default();
    let pieces: Vec<Vec<Decoded<'a>>> = std::thread::scope(|scope| {
        let others: Vec<_> =
            slices.map(|slice| scope.spawn(move || decode_slice(slice, enricher, max_bytes))).collect();
        let mut pieces = vec![decode_slice(first, enricher, max_bytes)];
        // Decoding does not panic on any input; if it ever did, the pipeline should stop rather
        // than skip messages.
        pieces.extend(others.into_iter().map(|other| other.join().expect("a decode thread panicked")));
        pieces
    });
    pieces.into_iter().flatten()
}

fn decode_slice<'a>(
    inputs: &[(InputFormat, &'a [u8])],
    enricher: Option<&'a Enricher>,
    max_bytes: usize,
) -> Vec<Decoded<'a>> {
    inputs
        .iter()
        .map(|&(format, bytes)| {
            let mut decoded = decode_as(format, bytes, max_bytes);
            if let (Some(enricher), Ok(event)) = (enricher, &mut decoded) {
                enricher.enrich(event);
            }
            decoded
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Vec<u8> {
        if i % 7 == 3 {
            return format!("{{\"time\": \"bad {i}\"}}").into_bytes();
        }
        format!(
            r#"{{"time": {}, "account": "acct-{i}", "action": "auth.login", "outcome": "success"}}"#,
            1_700_000_000_000u64 + i as u64
        )
        .into_bytes()
    }

    #[test]
    fn parallel_decoding_keeps_order_and_matches_one_thread() {
        for n in [0, 1, 511, 1024, 1537, 5000] {
            let lines: Vec<Vec<u8>> = (0..n).map(line).collect();
            let inputs: Vec<(InputFormat, &[u8])> = lines.iter().map(|l| (InputFormat::Native, l.as_slice())).collect();
            let one: Vec<_> = decode_batch(&inputs, None, 1 << 20, 1).collect();
            let four: Vec<_> = decode_batch(&inputs, None, 1 << 20, 4).collect();
            assert_eq!(one.len(), n);
            assert_eq!(one, four, "{n} messages");
            for (i, decoded) in four.iter().enumerate() {
                match decoded {
                    Ok(event) => assert_eq!(event.account, format!("acct-{i}")),
                    Err(error) => {
                        assert_eq!(i % 7, 3);
                        assert_eq!(error.field.as_deref(), Some("time"));
                    }
                }
            }
        }
    }
}

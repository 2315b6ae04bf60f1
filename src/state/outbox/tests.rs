use super::*;
use crate::pipeline::barrier::Participant;

fn small() -> OutboxOptions {
    OutboxOptions { max_bytes: 1 << 20, segment_bytes: 300, remember_ids: 1000, confirm_before_commit: None }
}

fn ids(batch: &[Entry]) -> Vec<String> {
    batch.iter().map(|e| e.id.clone()).collect()
}

fn sinks() -> Vec<String> {
    vec!["a".to_string(), "b".to_string()]
}

fn make_durable(outbox: &mut Outbox) {
    let section = outbox.capture(1)().unwrap();
    outbox.durable(1, section);
}

#[test]
fn each_sink_reads_in_order_from_its_own_cursor_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), None, small()).unwrap();
    let (mut a, mut b) = (outbox.reader("a"), outbox.reader("b"));
    for i in 0..20 {
        assert!(outbox.append(&format!("id{i}"), b"k", b"{\"x\":1}", &[("h", "v")]).unwrap());
        if i == 0 {
            assert!(a.next_batch(100, Duration::ZERO).unwrap().is_empty(), "nothing visible before publish");
        }
    }
    outbox.publish().unwrap();
    assert!(lock(&outbox.shared).segments.len() > 2, "small segments roll");
    let first = a.next_batch(7, Duration::ZERO).unwrap();
    assert_eq!(ids(&first), (0..7).map(|i| format!("id{i}")).collect::<Vec<_>>());
    assert_eq!(first[0].headers, vec![("h".to_string(), "v".to_string())]);
    a.confirm(first[6].seq + 1).unwrap();
    let rest = a.next_batch(100, Duration::ZERO).unwrap();
    assert_eq!(ids(&rest), (7..20).map(|i| format!("id{i}")).collect::<Vec<_>>());
    assert_eq!(b.next_batch(100, Duration::ZERO).unwrap().len(), 20, "b is independent of a");
}

#[test]
fn restart_resumes_each_cursor_and_takes_no_id_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), None, small()).unwrap();
    for i in 0..10 {
        outbox.append(&format!("id{i}"), b"", b"{}", &[]).unwrap();
    }
    outbox.publish().unwrap();
    let mut a = outbox.reader("a");
    let batch = a.next_batch(4, Duration::ZERO).unwrap();
    a.confirm(batch[3].seq + 1).unwrap();
    drop(outbox);
    // A crash without a checkpoint: the log and the cursor files are all there is.
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), None, small()).unwrap();
    assert!(!outbox.append("id3", b"", b"{}", &[]).unwrap(), "a replayed alert is already in the outbox");
    assert!(outbox.append("id10", b"", b"{}", &[]).unwrap());
    outbox.publish().unwrap();
    let a = outbox.reader("a").next_batch(100, Duration::ZERO).unwrap();
    assert_eq!(ids(&a), (4..11).map(|i| format!("id{i}")).collect::<Vec<_>>());
    assert_eq!(outbox.reader("b").next_batch(100, Duration::ZERO).unwrap().len(), 11);
}

#[test]
fn a_torn_tail_is_cut_and_the_rest_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), None, OutboxOptions::default()).unwrap();
    for i in 0..3 {
        outbox.append(&format!("id{i}"), b"", b"{}", &[]).unwrap();
    }
    outbox.publish().unwrap();
    drop(outbox);
    let segment = segment_path(&dir.path().join("outbox").join("alerts"), 0);
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), None, OutboxOptions::default()).unwrap();
    outbox.append("id3", b"", b"{}", &[]).unwrap();
    outbox.publish().unwrap();
    let all = outbox.reader("a").next_batch(100, Duration::ZERO).unwrap();
    assert_eq!(ids(&all), ["id0", "id1", "id2", "id3"]);
}

#[test]
fn segments_go_once_every_sink_passed_them_and_a_checkpoint_covers_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), None, small()).unwrap();
    for i in 0..30 {
        outbox.append(&format!("id{i}"), b"", &[b'x'; 40], &[]).unwrap();
    }
    outbox.publish().unwrap();
    let before = outbox.bytes_on_disk();
    let mut a = outbox.reader("a");
    a.confirm(30).unwrap();
    make_durable(&mut outbox);
    assert_eq!(outbox.bytes_on_disk(), before, "b has not passed anything yet");
    outbox.reader("b").confirm(30).unwrap();
    make_durable(&mut outbox);
    assert!(outbox.bytes_on_disk() < before / 4, "{} of {before} bytes left", outbox.bytes_on_disk());
    // The ids of compacted entries are still known after a restart from the checkpoint.
    let section = outbox.capture(2)().unwrap();
    drop(outbox);
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), Some(&section), small()).unwrap();
    assert!(!outbox.append("id0", b"", b"{}", &[]).unwrap());
}

#[test]
fn past_the_size_bound_a_stuck_sink_gets_its_oldest_entries_in_its_overflow_file() {
    let dir = tempfile::tempdir().unwrap();
    let options = OutboxOptions { max_bytes: 1000, ..small() };
    let mut outbox = Outbox::open(dir.path(), "alerts", &sinks(), None, options).unwrap();
    let mut a = outbox.reader("a");
    for i in 0..40 {
        outbox.append(&format!("id{i}"), b"", format!("{{\"n\":{i}}}").as_bytes(), &[]).unwrap();
        outbox.publish().unwrap();
        // Sink a keeps up; sink b is stuck.
        let batch = a.next_batch(100, Duration::ZERO).unwrap();
        if let Some(last) = batch.last() {
            a.confirm(last.seq + 1).unwrap();
        }
    }
    assert!(outbox.bytes_on_disk() <= 1000 + 300, "bounded: {}", outbox.bytes_on_disk());
    let overflow = fs::read_to_string(dir.path().join("outbox/alerts/b.overflow.jsonl")).unwrap();
    let moved = overflow.lines().count() as u64;
    assert!(moved > 0 && outbox.overflowed["b"] == moved);
    assert!(!outbox.overflowed.contains_key("a"), "a sink that keeps up loses nothing to overflow");
    // What b still gets from the outbox plus its overflow file is everything, once.
    let rest = outbox.reader("b").next_batch(100, Duration::ZERO).unwrap();
    assert_eq!(moved + rest.len() as u64, 40);
    assert_eq!(overflow.lines().next(), Some("{\"n\":0}"));
}

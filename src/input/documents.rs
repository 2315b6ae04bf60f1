//! Whole JSON documents that hold many records, as files of audit logs are written: a CloudTrail
//! log file (`{"Records": [...]}`), a JSON array (`[...]`), or a single record spanning lines.
//!
//! [`records`] finds the bytes of each record inside the document without copying them, so each
//! is decoded (and dead-lettered) exactly as a message of its format would be. Pure: the caller
//! reads the bytes (`crate::replay` chooses between lines and documents).

use std::ops::Range;

/// Largest whole document read into memory (records of a JSON-lines file are streamed instead).
pub const MAX_DOCUMENT_BYTES: usize = 256 << 20;

/// Whether `doc` is a document of many records: a JSON array, or an object with a `Records`
/// array. `doc` must be one JSON value that serde_json accepted.
pub fn holds_records(doc: &[u8]) -> bool {
    let start = skip_ws(doc, 0);
    match doc.get(start) {
        Some(b'[') => true,
        Some(b'{') => member(doc, start, "Records").is_some_and(|at| doc.get(at) == Some(&b'[')),
        _ => false,
    }
}

/// The byte ranges of the records of `doc`: the elements of a top-level array or of the
/// top-level `Records` array, else the whole document as one record. `doc` must be one JSON
/// value that serde_json accepted (the scan trusts its structure; it never panics on others).
pub fn records(doc: &[u8]) -> Vec<Range<usize>> {
    let start = skip_ws(doc, 0);
    let array = match doc.get(start) {
        Some(b'[') => Some(start),
        Some(b'{') => member(doc, start, "Records").filter(|&at| doc.get(at) == Some(&b'[')),
        _ => None,
    };
    match array {
        Some(open) => elements(doc, open),
        None => {
            let whole = start..value_end(doc, start);
            vec![whole]
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// End (exclusive) of the string whose opening quote is at `i`.
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// End (exclusive) of the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = string_end(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while b.get(j).is_some_and(|&c| !matches!(c, b',' | b']' | b'}') && !c.is_ascii_whitespace()) {
                j += 1;
            }
            j
        }
    }
}

/// The elements of the array whose `[` is at `open`.
fn elements(b: &[u8], open: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = skip_ws(b, open + 1);
    if matches!(b.get(i), Some(b']') | None) {
        return out;
    }
    loop {
        let end = value_end(b, i);
        out.push(i..end);
        i = skip_ws(b, end);
        if b.get(i) != Some(&b',') {
            return out;
        }
        i = skip_ws(b, i + 1);
    }
}

/// Where the value of member `key` of the object whose `{` is at `open` starts.
fn member(b: &[u8], open: usize, key: &str) -> Option<usize> {
    let mut i = skip_ws(b, open + 1);
    while b.get(i) == Some(&b'"') {
        let key_end = string_end(b, i);
        // Keys may hold escapes: compare the decoded name.
        let name: Option<String> = b.get(i..key_end).and_then(|raw| serde_json::from_slice(raw).ok());
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if name.as_deref() == Some(key) {
            return Some(i);
        }
        i = skip_ws(b, value_end(b, i));
        if b.get(i) != Some(&b',') {
            return None;
        }
        i = skip_ws(b, i + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(doc: &str) -> Vec<&str> {
        records(doc.as_bytes()).into_iter().map(|r| &doc[r]).collect()
    }

    #[test]
    fn splits_a_cloudtrail_log_file_into_its_records() {
        let doc = r#"{ "Other": {"Records": [9]}, "Records" : [ {"a": "x}]\"", "b": [1, {"c": 2}]},
            {"eventName": "GetObject"} , 7 ] }"#;
        assert!(holds_records(doc.as_bytes()));
        assert_eq!(texts(doc), [r#"{"a": "x}]\"", "b": [1, {"c": 2}]}"#, r#"{"eventName": "GetObject"}"#, "7"]);
    }

    #[test]
    fn splits_an_array_and_keeps_a_single_record_whole() {
        assert_eq!(texts("\n[ {\"a\":1},\n  \"s\" ,null, -1.5e3]\n"), ["{\"a\":1}", "\"s\"", "null", "-1.5e3"]);
        assert_eq!(texts("[ ]"), Vec::<&str>::new());
        assert_eq!(texts(r#"{"Records": []}"#), Vec::<&str>::new());
        let single = "{\n  \"eventName\": \"GetObject\",\n  \"Records\": 3\n}\n";
        assert!(!holds_records(single.as_bytes()));
        assert_eq!(texts(single), [single.trim_end()]);
        // An escaped key is the same key.
        assert_eq!(texts(r#"{"Rec\u006frds": [1, 2]}"#), ["1", "2"]);
    }

    #[test]
    fn never_panics_on_broken_input() {
        for doc in ["", "[", "{\"Records\": [", "{\"Records\"", "[\"\\", "{\"a\" 1}", "]]", "[1,"] {
            for r in records(doc.as_bytes()) {
                assert!(r.start <= r.end && r.end <= doc.len(), "{doc:?}: {r:?}");
            }
        }
    }
}

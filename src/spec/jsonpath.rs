//! Names the field a serde error points at. serde_json reports a wrong type as "invalid
//! type: string, expected u32 at line 1 column 812", which tells a user nothing about
//! which of a config's hundreds of fields is wrong; this walks the JSON text up to that
//! column and returns the path there, as `process.user.uid` or `mounts[2].options`.

enum Frame {
    Object { key: Option<String> },
    Array { index: usize },
}

/// The dotted path of the value being read at byte `offset` of `text` (a JSON document
/// on one line, as `serde_json::to_string` writes it). Empty at the top level.
pub(crate) fn path_at(text: &str, offset: usize) -> String {
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let mut stack: Vec<Frame> = Vec::new();
    // In an object, a string is a key until the ':' that follows it.
    let mut expect_key = false;
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'{' => {
                stack.push(Frame::Object { key: None });
                expect_key = true;
            }
            b'[' => {
                stack.push(Frame::Array { index: 0 });
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { key }) => {
                    *key = None;
                    expect_key = true;
                }
                None => {}
            },
            b':' => expect_key = false,
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if expect_key {
                    if let Some(Frame::Object { key }) = stack.last_mut() {
                        let raw = &text[start..i.min(bytes.len())];
                        *key = Some(
                            serde_json::from_str(&format!("\"{raw}\""))
                                .unwrap_or_else(|_| raw.to_string()),
                        );
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut out = String::new();
    for f in &stack {
        match f {
            Frame::Object { key: Some(k) } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Frame::Object { key: None } => {}
            Frame::Array { index } => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::path_at;

    /// The path serde_json's own error column points at, for a document that fails
    /// to deserialize as `T`.
    fn path_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        let e = serde_json::from_str::<T>(text).unwrap_err();
        path_at(text, e.column())
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct User {
        uid: u32,
        gids: Option<Vec<u32>>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Doc {
        name: Option<String>,
        user: Option<User>,
        mounts: Option<Vec<std::collections::HashMap<String, String>>>,
    }

    #[test]
    fn names_the_failing_field() {
        for (text, want) in [
            (r#"{"user":{"uid":"0"}}"#, "user.uid"),
            (r#"{"name":"a","user":{"uid":-1}}"#, "user.uid"),
            (r#"{"user":{"uid":1,"gids":[1,2,"x"]}}"#, "user.gids[2]"),
            (r#"{"mounts":[{"a":"b"},{"c":1}]}"#, "mounts[1].c"),
            (r#"{"mounts":{"a":1}}"#, "mounts"),
            (r#"{"name":"x\",\"user\":{","user":7}"#, "user"),
            (r#"{"n\u0061me":5}"#, "name"),
        ] {
            assert_eq!(path_of::<Doc>(text), want, "{text}");
        }
    }

    #[test]
    fn top_level_and_out_of_range_offsets() {
        assert_eq!(path_at("", 10), "");
        assert_eq!(path_at(r#"{"a":[1,{"b":"#, 100), "a[1].b");
    }
}

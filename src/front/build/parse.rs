//! The Dockerfile language as Docker's classic builder reads it: parser directives
//! (`# escape=`, `# syntax=` ignored), comments, line continuations, heredocs (`<<EOF`,
//! `<<-EOF`, quoted delimiters), instructions with their `--flags`, shell and exec (JSON)
//! forms, and the word expansion of Docker's shell lexer (`$VAR`, `${VAR}`,
//! `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, quotes and
//! escapes). Every error names the file and line.

use anyhow::{bail, Result};

/// Instructions the builder knows.
pub(crate) const KNOWN: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Heredoc {
    pub(crate) name: String,
    pub(crate) body: String,
    /// `<<"EOF"` / `<<'EOF'`: the body is not expanded.
    pub(crate) quoted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// 1-based line where the instruction starts.
    pub(crate) line: usize,
    /// Upper case.
    pub(crate) cmd: String,
    /// `--name=value` flags before the arguments, in order.
    pub(crate) flags: Vec<(String, String)>,
    /// The arguments after the flags, continuations joined.
    pub(crate) rest: String,
    /// The instruction as written (continuations joined), for `Step N/M : ...`.
    pub(crate) original: String,
    pub(crate) heredocs: Vec<Heredoc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Dockerfile {
    pub(crate) escape: char,
    pub(crate) instructions: Vec<Instruction>,
}

/// Shell form (a string for the shell) or exec form (a JSON list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    Shell(String),
    Exec(Vec<String>),
}

impl Instruction {
    pub(crate) fn form(&self) -> Form {
        let t = self.rest.trim();
        if t.starts_with('[') {
            if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
                return Form::Exec(v);
            }
        }
        Form::Shell(t.to_string())
    }

    pub(crate) fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `text` (the file `file`, named in errors).
pub(crate) fn parse(text: &str, file: &str) -> Result<Dockerfile> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: only at the very top, before any comment or instruction.
    let mut seen = Vec::new();
    while i < lines.len() {
        let Some(c) = lines[i].trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = c.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) {
            break;
        }
        let v = v.trim();
        match k.as_str() {
            "escape" => {
                escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => bail!(
                        "{file}:{}: invalid escape token '{v}' does not match ` or \\",
                        i + 1
                    ),
                }
            }
            "syntax" | "check" => {}
            _ => break,
        }
        if seen.contains(&k) {
            bail!(
                "{file}:{}: only one {k} parser directive can be used",
                i + 1
            );
        }
        seen.push(k);
        i += 1;
    }
    let mut out = Vec::new();
    while i < lines.len() {
        let start = i;
        let line = lines[i];
        i += 1;
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // Join continuation lines; comment lines inside are dropped, as Docker does.
        let mut joined = String::new();
        let mut cur = t.to_string();
        loop {
            let trimmed = cur.trim_end();
            if let Some(body) = trimmed.strip_suffix(escape) {
                joined.push_str(body);
                let mut next = None;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let lt = l.trim_start();
                    if lt.starts_with('#') || lt.is_empty() {
                        continue;
                    }
                    next = Some(l.to_string());
                    break;
                }
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            } else {
                joined.push_str(&cur);
                break;
            }
        }
        let joined = joined.trim().to_string();
        let (word, rest) = match joined.split_once(char::is_whitespace) {
            Some((w, r)) => (w.to_string(), r.trim_start().to_string()),
            None => (joined.clone(), String::new()),
        };
        let cmd = word.to_ascii_uppercase();
        if !KNOWN.contains(&cmd.as_str()) {
            bail!("{file}:{}: unknown instruction: {word}", start + 1);
        }
        let (flags, rest) = if matches!(
            cmd.as_str(),
            "FROM" | "RUN" | "COPY" | "ADD" | "HEALTHCHECK"
        ) {
            split_flags(&rest)
        } else {
            (Vec::new(), rest)
        };
        let mut heredocs = Vec::new();
        if matches!(cmd.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, strip, quoted) in heredoc_markers(&rest) {
                let mut body = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let l = if strip { l.trim_start_matches('\t') } else { l };
                    if l == name {
                        closed = true;
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                if !closed {
                    bail!(
                        "{file}:{}: heredoc <<{name} is not terminated by a line {name}",
                        start + 1
                    );
                }
                heredocs.push(Heredoc { name, body, quoted });
            }
        }
        if rest.is_empty() && !matches!(cmd.as_str(), "RUN" | "CMD" | "ENTRYPOINT") {
            bail!("{file}:{}: {cmd} requires at least one argument", start + 1);
        }
        if rest.is_empty() && heredocs.is_empty() && cmd == "RUN" {
            bail!("{file}:{}: RUN requires at least one argument", start + 1);
        }
        out.push(Instruction {
            line: start + 1,
            cmd,
            flags,
            rest,
            original: joined,
            heredocs,
        });
    }
    Ok(Dockerfile {
        escape,
        instructions: out,
    })
}

fn split_flags(rest: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut r = rest.trim_start();
    while let Some(f) = r.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        if word.is_empty() {
            break;
        }
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        flags.push((k.to_string(), v.to_string()));
        r = f[end..].trim_start();
    }
    (flags, r.to_string())
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` markers of a RUN/COPY line: (name, strip tabs,
/// quoted).
fn heredoc_markers(rest: &str) -> Vec<(String, bool, bool)> {
    if rest.trim_start().starts_with('[') {
        return Vec::new();
    }
    let mut out = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'<' && b[i + 1] == b'<' && (i == 0 || b[i - 1] != b'<') {
            let mut j = i + 2;
            if j < b.len() && b[j] == b'<' {
                // A here-string (<<<) is the shell's business.
                i += 3;
                continue;
            }
            let strip = j < b.len() && b[j] == b'-';
            if strip {
                j += 1;
            }
            let quote = match b.get(j) {
                Some(b'"') => Some(b'"'),
                Some(b'\'') => Some(b'\''),
                _ => None,
            };
            if quote.is_some() {
                j += 1;
            }
            let s = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > s {
                if let Some(q) = quote {
                    if b.get(j) != Some(&q) {
                        i = j;
                        continue;
                    }
                    j += 1;
                }
                out.push((
                    rest[s..j - quote.map_or(0, |_| 1)].to_string(),
                    strip,
                    quote.is_some(),
                ));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Splits `s` into words at unquoted whitespace, keeping quotes and escapes in the words
/// (expansion removes them), as Docker's `parseNameVal`/`parseWords` do.
pub(crate) fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Expands one word as Docker's shell lexer does: quotes and escapes removed, variables
/// substituted from `lookup` (not inside single quotes). Unset variables are empty.
pub(crate) fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut pos = 0;
    expand_until(&chars, &mut pos, escape, lookup, None)
}

fn expand_until(
    c: &[char],
    pos: &mut usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    stop: Option<char>,
) -> Result<String> {
    let mut out = String::new();
    while *pos < c.len() {
        let ch = c[*pos];
        if Some(ch) == stop {
            return Ok(out);
        }
        *pos += 1;
        if ch == escape {
            if *pos < c.len() {
                out.push(c[*pos]);
                *pos += 1;
            }
            continue;
        }
        match ch {
            '\'' if stop.is_none() => {
                while *pos < c.len() && c[*pos] != '\'' {
                    out.push(c[*pos]);
                    *pos += 1;
                }
                if *pos >= c.len() {
                    bail!("unexpected end of statement while looking for matching single-quote");
                }
                *pos += 1;
            }
            '"' if stop.is_none() => {
                while *pos < c.len() && c[*pos] != '"' {
                    let ch = c[*pos];
                    *pos += 1;
                    if ch == escape && *pos < c.len() {
                        // Inside double quotes only the quote, the escape and $ are
                        // escapable; elsewhere the escape stays.
                        let n = c[*pos];
                        if n == '"' || n == escape || n == '$' {
                            out.push(n);
                            *pos += 1;
                        } else {
                            out.push(ch);
                        }
                        continue;
                    }
                    if ch == '$' {
                        out.push_str(&variable(c, pos, escape, lookup)?);
                        continue;
                    }
                    out.push(ch);
                }
                if *pos >= c.len() {
                    bail!("unexpected end of statement while looking for matching double-quote");
                }
                *pos += 1;
            }
            '$' => out.push_str(&variable(c, pos, escape, lookup)?),
            _ => out.push(ch),
        }
    }
    if stop.is_some() {
        bail!("missing '}}' in variable expansion");
    }
    Ok(out)
}

/// After a `$`: the variable's expansion.
fn variable(
    c: &[char],
    pos: &mut usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let name_char = |x: char| x.is_ascii_alphanumeric() || x == '_';
    if *pos >= c.len() {
        return Ok("$".into());
    }
    if c[*pos] != '{' {
        let s = *pos;
        if c[s].is_ascii_digit() {
            // A positional parameter is one digit, as the shell reads it.
            *pos += 1;
            return Ok(lookup(&c[s].to_string()).unwrap_or_default());
        }
        while *pos < c.len() && name_char(c[*pos]) {
            *pos += 1;
        }
        if s == *pos {
            return Ok("$".into());
        }
        let name: String = c[s..*pos].iter().collect();
        return Ok(lookup(&name).unwrap_or_default());
    }
    *pos += 1;
    let s = *pos;
    while *pos < c.len() && name_char(c[*pos]) {
        *pos += 1;
    }
    let name: String = c[s..*pos].iter().collect();
    if name.is_empty() {
        bail!("bad substitution: an empty variable name in ${{}}");
    }
    if *pos >= c.len() {
        bail!("missing '}}' in ${{{name}");
    }
    if c[*pos] == '}' {
        *pos += 1;
        return Ok(lookup(&name).unwrap_or_default());
    }
    let colon = c[*pos] == ':';
    if colon {
        *pos += 1;
    }
    let op = *c.get(*pos).unwrap_or(&'}');
    if !matches!(op, '-' | '+' | '?') {
        bail!("unsupported modifier ({op}) in substitution ${{{name}...}}");
    }
    *pos += 1;
    let word = expand_until(c, pos, escape, lookup, Some('}'))?;
    *pos += 1;
    let val = lookup(&name);
    let set = match &val {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    Ok(match op {
        '-' => {
            if set {
                val.unwrap_or_default()
            } else {
                word
            }
        }
        '+' => {
            if set {
                word
            } else {
                String::new()
            }
        }
        _ => {
            if set {
                val.unwrap_or_default()
            } else if word.is_empty() {
                bail!("{name}: is not allowed to be unset");
            } else {
                bail!("{name}: {word}");
            }
        }
    })
}

/// `k=v k2="v 2"` (each word expanded), or the legacy `k value words` form (ENV, LABEL,
/// ARG's `k=v`).
pub(crate) fn name_values(
    rest: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    legacy: bool,
) -> Result<Vec<(String, String)>> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        bail!("missing arguments");
    };
    if legacy && !first.contains('=') {
        let (k, v) = rest
            .trim()
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((rest.trim(), ""));
        if v.is_empty() {
            bail!("{k} must have two arguments");
        }
        return Ok(vec![(k.to_string(), expand(v, escape, lookup)?)]);
    }
    words
        .iter()
        .map(|w| {
            let Some((k, v)) = w.split_once('=') else {
                bail!("{w}: expected NAME=VALUE");
            };
            let k = expand(k, escape, lookup)?;
            if k.is_empty() {
                bail!("{w}: a name cannot be empty");
            }
            Ok((k, expand(v, escape, lookup)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn instructions_continuations_comments_flags() {
        let df = "# syntax=docker/dockerfile:1\n\
                  FROM busybox AS base\n\
                  # a comment\n\
                  RUN echo a \\\n\
                  # inside\n\
                  \x20   && echo b\n\
                  \n\
                  copy --from=base --chown=1:2 a b /dst/\n\
                  CMD [\"sh\", \"-c\", \"x\"]\n";
        let d = parse(df, "Dockerfile").unwrap();
        let i = &d.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(
            (i[0].line, i[0].cmd.as_str(), i[0].rest.as_str()),
            (2, "FROM", "busybox AS base")
        );
        assert_eq!(i[1].line, 4);
        assert_eq!(i[1].rest, "echo a     && echo b");
        assert_eq!(i[2].cmd, "COPY");
        assert_eq!(i[2].flag("from"), Some("base"));
        assert_eq!(i[2].flag("chown"), Some("1:2"));
        assert_eq!(i[2].rest, "a b /dst/");
        assert_eq!(
            i[3].form(),
            Form::Exec(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(i[1].form(), Form::Shell("echo a     && echo b".into()));
    }

    #[test]
    fn escape_directive_and_errors_name_the_line() {
        let d = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n", "Df").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.instructions[1].rest, "dir c:\\   && echo");
        let e = parse("FROM x\n\nFOO bar\n", "Dockerfile").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:3: unknown instruction: FOO");
        let e = parse("FROM x\nWORKDIR\n", "Df").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Df:2: WORKDIR requires at least one argument"
        );
        // A directive after a comment is a comment.
        let d = parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n", "Df").unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(d.instructions[1].rest, "a  b");
    }

    #[test]
    fn heredocs() {
        let d = parse(
            "FROM x\nRUN <<EOF\necho one\necho $A\nEOF\nRUN <<-'END' cat\n\tx\n\tEND\nCMD y\n",
            "Df",
        )
        .unwrap();
        let i = &d.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(
            i[1].heredocs,
            vec![Heredoc {
                name: "EOF".into(),
                body: "echo one\necho $A\n".into(),
                quoted: false
            }]
        );
        assert_eq!(i[2].heredocs[0].body, "x\n");
        assert!(i[2].heredocs[0].quoted);
        assert_eq!(i[3].cmd, "CMD");
        let e = parse("FROM x\nRUN <<EOF\necho\n", "Df").unwrap_err();
        assert!(e.to_string().starts_with("Df:2: heredoc <<EOF"), "{e}");
    }

    #[test]
    fn expansion() {
        let l = env(&[("A", "1"), ("E", ""), ("P", "/p")]);
        let x = |w: &str| expand(w, '\\', &l).unwrap();
        assert_eq!(x("$A"), "1");
        assert_eq!(x("${A}x"), "1x");
        assert_eq!(x("${B:-d}"), "d");
        assert_eq!(x("${E:-d}"), "d");
        assert_eq!(x("${E-d}"), "");
        assert_eq!(x("${A:+alt}"), "alt");
        assert_eq!(x("${B:+alt}"), "");
        assert_eq!(x("${B:-${P}/x}"), "/p/x");
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A b\""), "1 b");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("a$"), "a$");
        assert_eq!(x("$1x"), "x");
        assert!(expand("${B:?must}", '\\', &l)
            .unwrap_err()
            .to_string()
            .contains("must"));
        assert!(expand("${A", '\\', &l).is_err());
        assert!(expand("\"open", '\\', &l).is_err());
    }

    #[test]
    fn name_value_forms() {
        let l = env(&[("A", "1")]);
        let v = name_values("K=v K2=\"two words\" K3=$A", '\\', &l, true).unwrap();
        assert_eq!(
            v,
            vec![
                ("K".into(), "v".into()),
                ("K2".into(), "two words".into()),
                ("K3".into(), "1".into())
            ]
        );
        let v = name_values("K legacy value $A", '\\', &l, true).unwrap();
        assert_eq!(v, vec![("K".into(), "legacy value 1".into())]);
        assert!(name_values("K", '\\', &l, true).is_err());
        assert!(name_values("=v", '\\', &l, true).is_err());
        assert_eq!(
            split_words("a 'b c' \"d e\"\\ f", '\\'),
            vec!["a", "'b c'", "\"d e\"\\ f"]
        );
    }
}

//! Docker's `--format`: Go's text/template language (the subset Docker users write),
//! executed over `serde_json::Value` rows that commands build with Docker's field names,
//! plus Docker's own template functions, the `table` directive with its header row, and
//! the tabwriter Docker aligns tables with. One implementation for every command.
//!
//! Data model. Go executes templates over typed structs and maps; here every object is a
//! JSON object. Objects keep the order they were built in (as Go prints struct fields), so
//! commands build map-like objects (labels) in sorted key order, as Go sorts map keys.
//! Integers print as integers (Go's typed fields), floats as Go's `%v` of a float64, JSON
//! null as `<nil>` (Go's nil pointer, e.g. `.State.Health` without a healthcheck).
//! A missing key is decided by [`Missing`]. A field given arguments (`{{.Label "k"}}`,
//! a method in Docker's contexts) indexes the object stored under that field: commands
//! model one-argument methods as maps.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Number, Value};

// ---------------------------------------------------------------------------------------
// Public API

/// A parsed template. Parse once, execute per row.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    root: Vec<Node>,
    src: String,
}

/// What a missing object key evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Missing {
    /// Go's default over `map[string]interface{}`: prints `<no value>`.
    NoValue,
    /// Go's `missingkey=error`: `map has no entry for key "X"`.
    Error,
    /// What Docker users see: its contexts are structs (an unknown field is an error)
    /// holding string maps (labels, options: a missing key prints `<no value>`). An object
    /// whose values are all strings is taken for such a map.
    #[default]
    Docker,
}

/// A parse or execution error, with Go's text (`template: :1: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError(pub(crate) String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Parses Go template text. Errors read as Go's: `template: :1: unexpected "}" in operand`.
    pub(crate) fn parse(src: &str) -> Result<Template, TemplateError> {
        let items = lex(src);
        let mut p = Parser {
            items,
            i: 0,
            seen: 0,
            vars: vec!["$".to_string()],
            range_depth: 0,
            action_line: 0,
        };
        let root = p.parse_root().map_err(TemplateError)?;
        Ok(Template {
            root,
            src: src.to_string(),
        })
    }

    /// Executes over `data` with Docker's missing-key behaviour.
    pub(crate) fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        self.execute_with(data, Missing::Docker)
    }

    pub(crate) fn execute_with(
        &self,
        data: &Value,
        missing: Missing,
    ) -> Result<String, TemplateError> {
        let mut st = State {
            root: data,
            vars: vec![("$".to_string(), V::J(Cow::Borrowed(data)))],
            out: String::new(),
            missing,
            header: false,
            depth: 0,
        };
        let dot = V::J(Cow::Borrowed(data));
        match st.walk(&dot, &self.root) {
            Ok(_) => Ok(st.out),
            Err(e) => Err(TemplateError(self.exec_message(&e))),
        }
    }

    /// Docker's table header: the template run over `headers` (field name -> column title)
    /// with the functions that leave titles as they are. Errors are ignored and the text
    /// produced so far kept, as Docker does.
    fn execute_header(&self, headers: &Value) -> String {
        let mut st = State {
            root: headers,
            vars: vec![("$".to_string(), V::J(Cow::Borrowed(headers)))],
            out: String::new(),
            missing: Missing::NoValue,
            header: true,
            depth: 0,
        };
        let dot = V::J(Cow::Borrowed(headers));
        let _ = st.walk(&dot, &self.root);
        st.out
    }

    fn exec_message(&self, e: &ExecErr) -> String {
        let before = &self.src[..e.pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => e.pos - (nl + 1),
            None => e.pos,
        };
        let ctx = if e.ctx.chars().count() > 20 {
            format!("{}...", e.ctx.chars().take(20).collect::<String>())
        } else {
            e.ctx.clone()
        };
        format!(
            "template: :{line}:{col}: executing \"\" at <{ctx}>: {}",
            e.msg
        )
    }
}

/// A command's `--format` handling, as docker/cli's formatter.Context does it: `table ...`
/// (header row + aligned columns), `json` (one JSON object per line), or a raw template
/// (one execution per row, each followed by a newline).
#[derive(Debug, Clone)]
pub(crate) struct Formatter {
    table: bool,
    tmpl: Template,
}

impl Formatter {
    /// `format` as the user gave it; `None`, empty or exactly `table` select the command's
    /// `default_table` (e.g. `table {{.ID}}\t{{.Image}}`). Literal `\t` and `\n` in the
    /// text become tab and newline, as Docker does.
    pub(crate) fn new(format: Option<&str>, default_table: &str) -> anyhow::Result<Formatter> {
        let given = format.unwrap_or("");
        let chosen = if given.is_empty() || given == "table" {
            default_table
        } else {
            given
        };
        let (table, body) = if chosen == "json" {
            (false, "{{json .}}".to_string())
        } else if let Some(rest) = chosen.strip_prefix("table") {
            (true, rest.to_string())
        } else {
            (false, chosen.to_string())
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let tmpl =
            Template::parse(&body).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
        Ok(Formatter { table, tmpl })
    }

    pub(crate) fn is_table(&self) -> bool {
        self.table
    }

    /// Whether the template may read the field `name` of a row: false only when its text
    /// never names it and never reads a row whole (a `.` not followed by a field name, as
    /// in `{{json .}}`, `{{range .}}` or `{{index . "X"}}`). Lets a listing skip the
    /// columns a template never shows.
    pub(crate) fn may_read(&self, name: &str) -> bool {
        let src = self.tmpl.src.as_bytes();
        self.tmpl.src.contains(name)
            || src.iter().enumerate().any(|(i, &c)| {
                c == b'.'
                    && !src
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_')
            })
    }

    /// Renders every row; a table gets its header (from `headers`, an object mapping field
    /// names to titles, e.g. `{"ID": "CONTAINER ID"}`) even with no rows, as Docker prints.
    pub(crate) fn render(&self, rows: &[Value], headers: &Value) -> anyhow::Result<String> {
        let mut body = String::new();
        for row in rows {
            let s = self
                .tmpl
                .execute(row)
                .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
            body.push_str(&s);
            body.push('\n');
        }
        Ok(self.render_body(body, headers))
    }

    /// Whether the template is `body` (a `table` one when `table`), as a command's own
    /// default: the command may then render its rows itself ([`Formatter::render_body`]).
    pub(crate) fn is(&self, table: bool, body: &str) -> bool {
        self.table == table && self.tmpl.src == body
    }

    /// [`Formatter::render`] of rows the command rendered itself, `body`: each row's
    /// template output followed by a newline.
    pub(crate) fn render_body(&self, body: String, headers: &Value) -> String {
        if !self.table {
            return body;
        }
        let mut tw = TabWriter::docker();
        tw.write(&self.tmpl.execute_header(headers));
        tw.write("\n");
        tw.write(&body);
        tw.flush()
    }
}

/// Go's encoding/json of `v`: compact, `<`, `>`, `&` escaped when `escape_html` (json.Marshal)
/// and not otherwise (Docker's template `json` sets SetEscapeHTML(false)).
pub(crate) fn go_json(v: &Value, escape_html: bool) -> String {
    let mut out = String::new();
    json_value(v, escape_html, None, 0, &mut out);
    out
}

/// Go's json.MarshalIndent(v, "", indent): what `inspect` prints.
pub(crate) fn go_json_indent(v: &Value, indent: &str, escape_html: bool) -> String {
    let mut out = String::new();
    json_value(v, escape_html, Some(indent), 0, &mut out);
    out
}

/// Go's JSON string encoding (encoding/json appendString, Go >= 1.22).
pub(crate) fn go_json_string(s: &str, escape_html: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------
// Lexer (text/template/parse/lex.go)

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum T {
    Error,
    Bool,
    Char,
    CharConst,
    Declare,
    Assign,
    Eof,
    Field,
    Ident,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    Str,
    Text,
    Variable,
    // Keywords: Go prints these as <val>.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl T {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            T::Block
                | T::Break
                | T::Continue
                | T::Dot
                | T::Define
                | T::Else
                | T::End
                | T::If
                | T::Nil
                | T::Range
                | T::Template
                | T::With
        )
    }
}

#[derive(Clone, Debug)]
struct Item {
    t: T,
    pos: usize,
    val: String,
    line: usize,
}

impl Item {
    /// Go's item.String(), used in "unexpected X in Y".
    fn describe(&self) -> String {
        match self.t {
            T::Eof => "EOF".to_string(),
            T::Error => self.val.clone(),
            t if t.is_keyword() => format!("<{}>", self.val),
            _ if self.val.len() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                format!("{}...", go_quote(&head))
            }
            _ => go_quote(&self.val),
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

struct Lexer<'s> {
    input: &'s str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    paren_depth: i32,
    items: Vec<Item>,
}

impl<'s> Lexer<'s> {
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }
    fn backup(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pos -= c.len_utf8();
            if c == '\n' {
                self.line -= 1;
            }
        }
    }
    fn emit(&mut self, t: T) {
        self.items.push(Item {
            t,
            pos: self.start,
            val: self.input[self.start..self.pos].to_string(),
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }
    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }
    fn error(&mut self, msg: String) {
        self.items.push(Item {
            t: T::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        });
    }
    fn rest(&self) -> &'s str {
        &self.input[self.pos..]
    }
    /// At a right delimiter, and whether it carries a trim marker (" -}}").
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest();
        let b = r.as_bytes();
        if b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-' && r[2..].starts_with(RIGHT) {
            return (true, true);
        }
        (r.starts_with(RIGHT), false)
    }
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            // Go checks only the first rune of the right delimiter.
            Some('.' | ',' | '|' | ':' | ')' | '(' | '}') => true,
            _ => false,
        }
    }
    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.next();
                true
            }
            _ => false,
        }
    }
    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

/// Tokenises the whole text; stops after the first error item, which the parser reports
/// when it reaches it (Go's lexer is lazy; the parser sees the same sequence).
fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        line: 1,
        start_line: 1,
        paren_depth: 0,
        items: Vec::new(),
    };
    enum S {
        Text,
        Inside,
    }
    let mut s = S::Text;
    loop {
        match s {
            S::Text => {
                if let Some(x) = l.rest().find(LEFT) {
                    if x > 0 {
                        l.pos += x;
                        let delim_end = l.pos + LEFT.len();
                        let mut trim = 0;
                        if has_left_trim(&l.input[delim_end..]) {
                            let t = &l.input[l.start..l.pos];
                            trim = t.len() - t.trim_end_matches(is_space).len();
                        }
                        l.pos -= trim;
                        l.line += l.input[l.start..l.pos].matches('\n').count();
                        let text = l.input[l.start..l.pos].to_string();
                        let (p, ln) = (l.start, l.start_line);
                        l.start = l.pos;
                        l.start_line = l.line;
                        l.pos += trim;
                        l.ignore();
                        if !text.is_empty() {
                            l.items.push(Item {
                                t: T::Text,
                                pos: p,
                                val: text,
                                line: ln,
                            });
                        }
                    }
                    // Left delimiter.
                    l.pos += LEFT.len();
                    let trim = has_left_trim(l.rest());
                    let after = if trim { 2 } else { 0 };
                    if l.input[l.pos + after..].starts_with("/*") {
                        l.pos += after;
                        l.ignore();
                        l.pos += 2;
                        let Some(x) = l.rest().find("*/") else {
                            l.error("unclosed comment".into());
                            return l.items;
                        };
                        l.pos += x + 2;
                        let (delim, trim_space) = l.at_right_delim();
                        if !delim {
                            l.error("comment ends before closing delimiter".into());
                            return l.items;
                        }
                        if trim_space {
                            l.pos += 2;
                        }
                        l.pos += RIGHT.len();
                        if trim_space {
                            let r = l.rest();
                            l.pos += r.len() - r.trim_start_matches(is_space).len();
                        }
                        l.ignore();
                        continue;
                    }
                    l.emit(T::LeftDelim);
                    l.pos += after;
                    l.ignore();
                    l.paren_depth = 0;
                    s = S::Inside;
                } else {
                    l.pos = l.input.len();
                    if l.pos > l.start {
                        l.line += l.input[l.start..l.pos].matches('\n').count();
                        l.emit(T::Text);
                    }
                    l.emit(T::Eof);
                    return l.items;
                }
            }
            S::Inside => {
                let (delim, trim_space) = l.at_right_delim();
                if delim {
                    if l.paren_depth != 0 {
                        l.error("unclosed left paren".into());
                        return l.items;
                    }
                    if trim_space {
                        l.pos += 2;
                        l.ignore();
                    }
                    l.pos += RIGHT.len();
                    l.emit(T::RightDelim);
                    if trim_space {
                        let r = l.rest();
                        l.pos += r.len() - r.trim_start_matches(is_space).len();
                        l.ignore();
                    }
                    s = S::Text;
                    continue;
                }
                let Some(c) = l.next() else {
                    l.error("unclosed action".into());
                    return l.items;
                };
                match c {
                    c if is_space(c) => {
                        let mut n = 1;
                        while let Some(c) = l.peek() {
                            if !is_space(c) {
                                break;
                            }
                            l.next();
                            n += 1;
                        }
                        // A space that begins " -}}" belongs to the trim marker.
                        let from = l.pos - 1;
                        let b = l.input.as_bytes();
                        if b.get(from + 1) == Some(&b'-') && l.input[from + 2..].starts_with(RIGHT)
                        {
                            let last = l.input[..l.pos].chars().next_back();
                            l.backup(last);
                            if n == 1 {
                                continue;
                            }
                        }
                        l.emit(T::Space);
                    }
                    '=' => l.emit(T::Assign),
                    ':' => {
                        if l.next() != Some('=') {
                            l.error("expected :=".into());
                            return l.items;
                        }
                        l.emit(T::Declare);
                    }
                    '|' => l.emit(T::Pipe),
                    '"' => loop {
                        match l.next() {
                            Some('\\') => match l.next() {
                                Some(c) if c != '\n' => {}
                                _ => {
                                    l.error("unterminated quoted string".into());
                                    return l.items;
                                }
                            },
                            None | Some('\n') => {
                                l.error("unterminated quoted string".into());
                                return l.items;
                            }
                            Some('"') => {
                                l.emit(T::Str);
                                break;
                            }
                            _ => {}
                        }
                    },
                    '`' => loop {
                        match l.next() {
                            None => {
                                l.error("unterminated raw quoted string".into());
                                return l.items;
                            }
                            Some('`') => {
                                l.emit(T::RawString);
                                break;
                            }
                            _ => {}
                        }
                    },
                    '\'' => loop {
                        match l.next() {
                            Some('\\') => match l.next() {
                                Some(c) if c != '\n' => {}
                                _ => {
                                    l.error("unterminated character constant".into());
                                    return l.items;
                                }
                            },
                            None | Some('\n') => {
                                l.error("unterminated character constant".into());
                                return l.items;
                            }
                            Some('\'') => {
                                l.emit(T::CharConst);
                                break;
                            }
                            _ => {}
                        }
                    },
                    '$' | '.' if !(c == '.' && matches!(l.peek(), Some('0'..='9'))) => {
                        let typ = if c == '$' { T::Variable } else { T::Field };
                        if l.at_terminator() {
                            l.emit(if c == '$' { T::Variable } else { T::Dot });
                            continue;
                        }
                        loop {
                            let r = l.next();
                            match r {
                                Some(r) if is_alnum(r) => {}
                                _ => {
                                    l.backup(r);
                                    break;
                                }
                            }
                        }
                        if !l.at_terminator() {
                            let r = l.peek().unwrap_or('\0');
                            l.error(format!("bad character {}", go_unicode(r)));
                            return l.items;
                        }
                        l.emit(typ);
                    }
                    '.' | '+' | '-' | '0'..='9' => {
                        l.backup(Some(c));
                        if !scan_number(&mut l) {
                            let bad = l.input[l.start..l.pos].to_string();
                            l.error(format!("bad number syntax: {}", go_quote(&bad)));
                            return l.items;
                        }
                        l.emit(T::Number);
                    }
                    c if is_alnum(c) => {
                        while matches!(l.peek(), Some(c) if is_alnum(c)) {
                            l.next();
                        }
                        if !l.at_terminator() {
                            let r = l.peek().unwrap_or('\0');
                            l.error(format!("bad character {}", go_unicode(r)));
                            return l.items;
                        }
                        let word = &l.input[l.start..l.pos];
                        let t = match word {
                            "block" => T::Block,
                            "break" => T::Break,
                            "continue" => T::Continue,
                            "define" => T::Define,
                            "else" => T::Else,
                            "end" => T::End,
                            "if" => T::If,
                            "range" => T::Range,
                            "nil" => T::Nil,
                            "template" => T::Template,
                            "with" => T::With,
                            "true" | "false" => T::Bool,
                            _ => T::Ident,
                        };
                        l.emit(t);
                    }
                    '(' => {
                        l.paren_depth += 1;
                        l.emit(T::LeftParen);
                    }
                    ')' => {
                        l.paren_depth -= 1;
                        if l.paren_depth < 0 {
                            l.error("unexpected right paren".into());
                            return l.items;
                        }
                        l.emit(T::RightParen);
                    }
                    c if c.is_ascii() && !c.is_ascii_control() => l.emit(T::Char),
                    c => {
                        l.error(format!(
                            "unrecognized character in action: {}",
                            go_unicode(c)
                        ));
                        return l.items;
                    }
                }
            }
        }
    }
}

fn scan_number(l: &mut Lexer) -> bool {
    l.accept("+-");
    let mut digits = "0123456789_";
    if l.accept("0") {
        if l.accept("xX") {
            digits = "0123456789abcdefABCDEF_";
        } else if l.accept("oO") {
            digits = "01234567_";
        } else if l.accept("bB") {
            digits = "01_";
        }
    }
    l.accept_run(digits);
    if l.accept(".") {
        l.accept_run(digits);
    }
    if digits.len() == 11 && l.accept("eE") {
        l.accept("+-");
        l.accept_run("0123456789_");
    }
    if digits.len() == 23 && l.accept("pP") {
        l.accept("+-");
        l.accept_run("0123456789_");
    }
    if matches!(l.peek(), Some(c) if is_alnum(c)) {
        l.next();
        return false;
    }
    true
}

/// Go's `%#U`: `U+007D '}'`.
fn go_unicode(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

// ---------------------------------------------------------------------------------------
// Parse tree (text/template/parse/node.go, the parts Docker formats use)

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Break(usize),
    Continue(usize),
}

#[derive(Debug, Clone)]
struct Branch {
    pos: usize,
    pipe: Pipe,
    list: Vec<Node>,
    else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
struct Pipe {
    pos: usize,
    is_assign: bool,
    decl: Vec<String>,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    pos: usize,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Bool(usize, bool),
    Dot(usize),
    Nil(usize),
    Num(usize, NumLit),
    Str(usize, String, String),
    Field(usize, Vec<String>),
    Var(usize, Vec<String>),
    Ident(usize, String),
    Pipe(Box<Pipe>),
    Chain(usize, Box<Arg>, Vec<String>),
}

#[derive(Debug, Clone)]
struct NumLit {
    text: String,
    value: Value,
}

impl Arg {
    fn pos(&self) -> usize {
        match self {
            Arg::Bool(p, _)
            | Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Num(p, _)
            | Arg::Str(p, _, _)
            | Arg::Field(p, _)
            | Arg::Var(p, _)
            | Arg::Ident(p, _)
            | Arg::Chain(p, _, _) => *p,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Num(_, n) => f.write_str(&n.text),
            Arg::Str(_, quoted, _) => f.write_str(quoted),
            Arg::Field(_, idents) => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Var(_, idents) => f.write_str(&idents.join(".")),
            Arg::Ident(_, name) => f.write_str(name),
            Arg::Pipe(p) => write!(f, "{p}"),
            Arg::Chain(_, node, fields) => {
                if matches!(**node, Arg::Pipe(_)) {
                    write!(f, "({node})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

// ---------------------------------------------------------------------------------------
// Parser (text/template/parse/parse.go)

struct Parser {
    items: Vec<Item>,
    i: usize,
    /// Furthest item looked at: Go reports the line of the most recently lexed token.
    seen: usize,
    vars: Vec<String>,
    range_depth: usize,
    action_line: usize,
}

type PResult<T> = Result<T, String>;

impl Parser {
    fn next(&mut self) -> Item {
        // Past the end, the last item (EOF or the lexer's error) repeats.
        let it = self.items[self.i.min(self.items.len() - 1)].clone();
        self.seen = self.seen.max(self.i.min(self.items.len() - 1));
        self.i += 1;
        it
    }
    fn backup(&mut self) {
        self.i -= 1;
    }
    fn peek(&mut self) -> Item {
        let it = self.next();
        self.backup();
        it
    }
    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.t != T::Space {
                return it;
            }
        }
    }
    fn peek_non_space(&mut self) -> Item {
        let save = self.i;
        let it = self.next_non_space();
        self.i = save;
        it
    }
    fn errorf(&self, msg: String) -> String {
        let line = self.items[self.seen.min(self.items.len() - 1)].line;
        format!("template: :{line}: {msg}")
    }
    fn unexpected(&self, it: &Item, context: &str) -> String {
        if it.t == T::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != it.line {
                extra = format!(" in action started at :{}", self.action_line);
                if it.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{}{}", it.describe(), extra));
        }
        self.errorf(format!("unexpected {} in {}", it.describe(), context))
    }

    fn parse_root(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        loop {
            let it = self.peek();
            if it.t == T::Eof {
                return Ok(root);
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::End => return Err(self.errorf("unexpected {{end}}".into())),
                Parsed::Else(_) => return Err(self.errorf("unexpected {{else}}".into())),
            }
        }
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space();
        match it.t {
            T::Text => Ok(Parsed::Node(Node::Text(it.val))),
            T::LeftDelim => {
                self.action_line = it.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&it, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space();
        match it.t {
            T::Block | T::Define | T::Template => {
                Err(self.errorf(format!("{{{{{}}}}} is not supported", it.val)))
            }
            T::Break | T::Continue => {
                let t = self.next_non_space();
                let name = format!("{{{{{}}}}}", it.val);
                if t.t != T::RightDelim {
                    return Err(self.unexpected(&t, &name));
                }
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{name} outside {{{{range}}}}")));
                }
                Ok(Parsed::Node(if it.t == T::Break {
                    Node::Break(it.pos)
                } else {
                    Node::Continue(it.pos)
                }))
            }
            T::Else => {
                let peek = self.peek_non_space();
                if peek.t == T::If || peek.t == T::With {
                    return Ok(Parsed::Else(Some(peek.t)));
                }
                let t = self.next_non_space();
                if t.t != T::RightDelim {
                    return Err(self.unexpected(&t, "else"));
                }
                Ok(Parsed::Else(None))
            }
            T::End => {
                let t = self.next_non_space();
                if t.t != T::RightDelim {
                    return Err(self.unexpected(&t, "end"));
                }
                Ok(Parsed::End)
            }
            T::If => Ok(Parsed::Node(Node::If(Box::new(self.control("if")?)))),
            T::Range => Ok(Parsed::Node(Node::Range(Box::new(self.control("range")?)))),
            T::With => Ok(Parsed::Node(Node::With(Box::new(self.control("with")?)))),
            _ => {
                self.backup();
                let pipe = self.pipeline("command", T::RightDelim)?;
                Ok(Parsed::Node(Node::Action(pipe)))
            }
        }
    }

    fn control(&mut self, context: &str) -> PResult<Branch> {
        let mark = self.vars.len();
        let r = self.control_inner(context);
        self.vars.truncate(mark);
        r
    }

    fn control_inner(&mut self, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, T::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = (list?, next);
        let mut else_list = None;
        match next {
            Parsed::End => {}
            Parsed::Else(chained) => {
                if (context == "if" && chained == Some(T::If))
                    || (context == "with" && chained == Some(T::With))
                {
                    let kw = self.next_non_space();
                    let inner = self.control(context)?;
                    let _ = kw;
                    let node = if context == "if" {
                        Node::If(Box::new(inner))
                    } else {
                        Node::With(Box::new(inner))
                    };
                    else_list = Some(vec![node]);
                } else {
                    if chained.is_some() {
                        // "else if" inside range/with, "else with" inside if: Go parses the
                        // keyword as the start of an ordinary action and then fails on it.
                        let t = self.next_non_space();
                        return Err(self.unexpected(&t, "else"));
                    }
                    let (l, n) = self.item_list();
                    let l = l?;
                    if !matches!(n, Parsed::End) {
                        return Err(self.errorf("expected end; found {{else}}".into()));
                    }
                    else_list = Some(l);
                }
            }
            Parsed::Node(_) => unreachable!(),
        }
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    /// Nodes until `{{end}}` or `{{else}}`, which is returned.
    fn item_list(&mut self) -> (PResult<Vec<Node>>, Parsed) {
        let mut list = Vec::new();
        loop {
            if self.peek_non_space().t == T::Eof {
                return (Err(self.errorf("unexpected EOF".into())), Parsed::End);
            }
            match self.text_or_action() {
                Err(e) => return (Err(e), Parsed::End),
                Ok(Parsed::Node(n)) => list.push(n),
                Ok(other) => return (Ok(list), other),
            }
        }
    }

    fn pipeline(&mut self, context: &str, end: T) -> PResult<Pipe> {
        let first = self.peek_non_space();
        let mut pipe = Pipe {
            pos: first.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.t != T::Variable {
                break;
            }
            let save = self.i;
            self.next_non_space();
            let after = self.peek();
            let next = self.peek_non_space();
            match next.t {
                T::Assign | T::Declare => {
                    pipe.is_assign = next.t == T::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    break;
                }
                T::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().t {
                            T::Variable | T::RightDelim | T::RightParen => continue 'decls,
                            _ => {
                                return Err(
                                    self.errorf("range can only initialize variables".into())
                                )
                            }
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    let _ = after;
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let it = self.next_non_space();
            if it.t == end {
                if pipe.cmds.is_empty() {
                    return Err(self.errorf(format!("missing value for {context}")));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args[0],
                        Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Num(..) | Arg::Str(..)
                    ) {
                        return Err(self.errorf(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        )));
                    }
                }
                return Ok(pipe);
            }
            match it.t {
                T::Bool
                | T::CharConst
                | T::Dot
                | T::Field
                | T::Ident
                | T::Number
                | T::Nil
                | T::RawString
                | T::Str
                | T::Variable
                | T::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&it, context)),
            }
        }
    }

    fn command(&mut self) -> PResult<Cmd> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Cmd {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let it = self.next();
            match it.t {
                T::Space => continue,
                T::RightDelim | T::RightParen => self.backup(),
                T::Pipe => {}
                _ => return Err(self.unexpected(&it, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command".into()));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().t != T::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().t == T::Field {
            let f = self.next();
            fields.extend(f.val[1..].split('.').map(str::to_string));
        }
        Ok(Some(match node {
            Arg::Field(p, mut idents) => {
                idents.extend(fields);
                Arg::Field(p, idents)
            }
            Arg::Var(p, mut idents) => {
                idents.extend(fields);
                Arg::Var(p, idents)
            }
            Arg::Bool(..) | Arg::Str(..) | Arg::Num(..) | Arg::Nil(_) | Arg::Dot(_) => {
                let shown = match &node {
                    Arg::Str(_, q, _) => q.clone(),
                    other => other.to_string(),
                };
                return Err(self.errorf(format!("unexpected . after term {}", go_quote(&shown))));
            }
            other => Arg::Chain(pos, Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let it = self.next_non_space();
        Ok(Some(match it.t {
            T::Ident => {
                if !FUNCS.contains(&it.val.as_str()) {
                    return Err(self.errorf(format!("function {} not defined", go_quote(&it.val))));
                }
                Arg::Ident(it.pos, it.val)
            }
            T::Dot => Arg::Dot(it.pos),
            T::Nil => Arg::Nil(it.pos),
            T::Variable => {
                let idents: Vec<String> = it.val.split('.').map(str::to_string).collect();
                if !self.vars.iter().any(|v| *v == idents[0]) {
                    return Err(self.errorf(format!("undefined variable {}", go_quote(&idents[0]))));
                }
                Arg::Var(it.pos, idents)
            }
            T::Field => Arg::Field(it.pos, it.val[1..].split('.').map(str::to_string).collect()),
            T::Bool => Arg::Bool(it.pos, it.val == "true"),
            T::Number | T::CharConst => match parse_number(&it.val, it.t == T::CharConst) {
                Some(v) => Arg::Num(
                    it.pos,
                    NumLit {
                        text: it.val,
                        value: v,
                    },
                ),
                None if it.t == T::CharConst => {
                    return Err(self.errorf(format!("malformed character constant: {}", it.val)));
                }
                None => {
                    return Err(self.errorf(format!("illegal number syntax: {}", go_quote(&it.val))))
                }
            },
            T::LeftParen => Arg::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", T::RightParen)?,
            )),
            T::Str | T::RawString => match go_unquote(&it.val) {
                Some(s) => Arg::Str(it.pos, it.val, s),
                None => return Err(self.errorf("invalid syntax".into())),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Parsed {
    Node(Node),
    End,
    /// `{{else}}`, or `{{else if}}`/`{{else with}}` with the keyword still to be read.
    Else(Option<T>),
}

/// A number literal as Go's parser reads it, turned into the value it has when passed to
/// a function taking `any` (an int, else a float64).
fn parse_number(text: &str, is_char: bool) -> Option<Value> {
    if is_char {
        let s = go_unquote(text)?;
        let mut cs = s.chars();
        let c = cs.next()?;
        return cs.next().is_none().then(|| Value::from(c as i64));
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        u64::from_str_radix(&lower[1..], 8).ok()
    } else if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
        lower.parse::<u64>().ok()
    } else {
        None
    };
    if let Some(u) = int {
        if neg {
            return (u <= i64::MAX as u64 + 1)
                .then(|| Value::from((u as i128).wrapping_neg() as i64));
        }
        return Some(if u <= i64::MAX as u64 {
            Value::from(u as i64)
        } else {
            Value::from(u)
        });
    }
    if lower.starts_with("0x") {
        return None;
    }
    let f: f64 = body.parse().ok()?;
    if !body.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let f = if neg { -f } else { f };
    Number::from_f64(f).map(Value::Number)
}

/// strconv.Unquote for "..." , `...` and '...'.
fn go_unquote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let (q, inner) = (b[0], &s[1..s.len() - 1]);
    if b[b.len() - 1] != q {
        return None;
    }
    if q == b'`' {
        return (!inner.contains('`')).then(|| inner.replace('\r', ""));
    }
    if q != b'"' && q != b'\'' {
        return None;
    }
    let mut out = String::new();
    let mut cs = inner.chars().peekable();
    while let Some(c) = cs.next() {
        if c == q as char || c == '\n' {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = cs.next()?;
        let hex = |cs: &mut std::iter::Peekable<std::str::Chars>, n: usize| -> Option<u32> {
            let mut v = 0u32;
            for _ in 0..n {
                v = v * 16 + cs.next()?.to_digit(16)?;
            }
            Some(v)
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' if q == b'"' => out.push('"'),
            '\'' if q == b'\'' => out.push('\''),
            'x' => {
                let v = hex(&mut cs, 2)?;
                // Go keeps \x bytes raw; a String holds only valid UTF-8, so bytes >= 0x80
                // become their Latin-1 character.
                out.push(char::from_u32(v)?);
            }
            'u' => out.push(char::from_u32(hex(&mut cs, 4)?)?),
            'U' => out.push(char::from_u32(hex(&mut cs, 8)?)?),
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + cs.next()?.to_digit(8)?;
                }
                if v > 255 {
                    return None;
                }
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    if q == b'\'' && out.chars().count() != 1 {
        return None;
    }
    Some(out)
}

/// strconv.Quote.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// unicode.IsPrint, approximated: graphic characters and the ASCII space.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32, 0xad | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff)
}

// ---------------------------------------------------------------------------------------
// Execution (text/template/exec.go)

/// A value during execution: Go's invalid reflect.Value (a missing key) or JSON data,
/// borrowed from the row where possible.
#[derive(Debug, Clone)]
enum V<'a> {
    Missing,
    J(Cow<'a, Value>),
}

impl<'a> V<'a> {
    fn owned(v: Value) -> V<'a> {
        V::J(Cow::Owned(v))
    }
    fn json(&self) -> Option<&Value> {
        match self {
            V::Missing => None,
            V::J(c) => Some(c.as_ref()),
        }
    }
    /// As a function argument of type `any`: a missing value becomes nil.
    fn any(&self) -> Value {
        self.json().cloned().unwrap_or(Value::Null)
    }
}

struct ExecErr {
    pos: usize,
    ctx: String,
    msg: String,
}

type XResult<T> = Result<T, ExecErr>;

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    root: &'a Value,
    vars: Vec<(String, V<'a>)>,
    out: String,
    missing: Missing,
    header: bool,
    depth: usize,
}

fn err<T>(pos: usize, ctx: impl ToString, msg: impl Into<String>) -> XResult<T> {
    Err(ExecErr {
        pos,
        ctx: ctx.to_string(),
        msg: msg.into(),
    })
}

/// Go's truth: false, 0, nil, empty string/array/map and missing values are false.
fn truth(v: &V) -> bool {
    match v.json() {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// The Go type a value stands for, in error messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(n) if n.is_u64() => "uint64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

const MAX_DEPTH: usize = 10_000;

fn child<'a>(recv: &Cow<'a, Value>, key: &str) -> Option<Cow<'a, Value>> {
    match recv {
        Cow::Borrowed(r) => {
            let r: &'a Value = r;
            r.get(key).map(Cow::Borrowed)
        }
        Cow::Owned(v) => v.get(key).cloned().map(Cow::Owned),
    }
}

fn element<'a>(recv: &Cow<'a, Value>, i: usize) -> Option<Cow<'a, Value>> {
    match recv {
        Cow::Borrowed(r) => {
            let r: &'a Value = r;
            r.get(i).map(Cow::Borrowed)
        }
        Cow::Owned(v) => v.get(i).cloned().map(Cow::Owned),
    }
}

/// Docker's structs hold string maps (labels, options); an object of strings only is one.
fn is_string_map(o: &serde_json::Map<String, Value>) -> bool {
    o.values().all(Value::is_string)
}

/// A function argument, with where it came from for error messages.
struct ArgVal<'a> {
    v: V<'a>,
    pos: usize,
    ctx: String,
}

impl<'a> ArgVal<'a> {
    fn str(&self) -> XResult<&str> {
        match self.v.json() {
            Some(Value::String(s)) => Ok(s),
            Some(other) => err(
                self.pos,
                &self.ctx,
                format!(
                    "wrong type for value; expected string; got {}",
                    type_name(other)
                ),
            ),
            None => err(self.pos, &self.ctx, "invalid value; expected string"),
        }
    }
    fn int(&self) -> XResult<i64> {
        match self.v.json() {
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or(0)),
            Some(other) => err(
                self.pos,
                &self.ctx,
                format!(
                    "wrong type for value; expected int; got {}",
                    type_name(other)
                ),
            ),
            None => err(self.pos, &self.ctx, "invalid value; expected int"),
        }
    }
}

impl<'a> State<'a> {
    fn walk(&mut self, dot: &V<'a>, nodes: &[Node]) -> XResult<Flow> {
        for n in nodes {
            let flow = match n {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        print_value(&v, &mut self.out);
                    }
                    Flow::Normal
                }
                Node::If(b) => self.walk_if_with(dot, b, false)?,
                Node::With(b) => self.walk_if_with(dot, b, true)?,
                Node::Range(b) => {
                    self.walk_range(dot, b)?;
                    Flow::Normal
                }
                Node::Break(_) => Flow::Break,
                Node::Continue(_) => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(&mut self, dot: &V<'a>, b: &Branch, with: bool) -> XResult<Flow> {
        let mark = self.vars.len();
        let r = self.if_with_inner(dot, b, with);
        self.vars.truncate(mark);
        r
    }

    fn if_with_inner(&mut self, dot: &V<'a>, b: &Branch, with: bool) -> XResult<Flow> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        if truth(&val) {
            if with {
                self.walk(&val, &b.list)
            } else {
                self.walk(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk(dot, e)
        } else {
            Ok(Flow::Normal)
        }
    }

    fn walk_range(&mut self, dot: &V<'a>, b: &Branch) -> XResult<()> {
        let mark = self.vars.len();
        let r = self.range_inner(dot, b);
        self.vars.truncate(mark);
        r
    }

    fn range_inner(&mut self, dot: &V<'a>, b: &Branch) -> XResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(b.pos, "range", "exceeded maximum template depth");
        }
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let body_mark = self.vars.len();
        let mut entries: Vec<(V<'a>, V<'a>)> = Vec::new();
        match &val {
            V::Missing => {}
            V::J(c) => match c.as_ref() {
                Value::Null => {}
                Value::Array(a) => {
                    for i in 0..a.len() {
                        let e = element(c, i).map(V::J).unwrap_or(V::Missing);
                        entries.push((V::owned(Value::from(i as i64)), e));
                    }
                }
                Value::Object(o) => {
                    let mut keys: Vec<&String> = o.keys().collect();
                    keys.sort();
                    for k in keys {
                        let e = child(c, k).map(V::J).unwrap_or(V::Missing);
                        entries.push((V::owned(Value::String(k.clone())), e));
                    }
                }
                Value::Number(n) if n.is_i64() => {
                    for i in 0..n.as_i64().unwrap_or(0).max(0) {
                        entries.push((V::owned(Value::from(i)), V::owned(Value::from(i))));
                    }
                }
                other => {
                    let mut shown = String::new();
                    fmt_v(other, &mut shown);
                    return err(
                        b.pos,
                        format!("{{{{range {}}}}}", b.pipe),
                        format!("range can't iterate over {shown}"),
                    );
                }
            },
        }
        if entries.is_empty() {
            if let Some(e) = &b.else_list {
                self.walk(dot, e)?;
            }
            self.depth -= 1;
            return Ok(());
        }
        let nd = b.pipe.decl.len();
        for (index, elem) in entries {
            if nd > 0 {
                if b.pipe.is_assign {
                    if nd > 1 {
                        self.set_var(&b.pipe.decl[0], index.clone());
                        self.set_var(&b.pipe.decl[1], elem.clone());
                    } else {
                        self.set_var(&b.pipe.decl[0], elem.clone());
                    }
                } else {
                    let n = self.vars.len();
                    self.vars[n - 1].1 = elem.clone();
                    if nd > 1 {
                        self.vars[n - 2].1 = index.clone();
                    }
                }
            }
            let flow = self.walk(&elem, &b.list);
            self.vars.truncate(body_mark);
            if let Flow::Break = flow? {
                break;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn set_var(&mut self, name: &str, v: V<'a>) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var(&self, pos: usize, name: &str) -> XResult<V<'a>> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(pos, name, format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &V<'a>, pipe: &Pipe) -> XResult<V<'a>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(pipe.pos, pipe, "exceeded maximum template depth");
        }
        let mut value: Option<V<'a>> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(v);
        }
        let value = value.unwrap_or(V::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone());
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        self.depth -= 1;
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Cmd, fin: &Option<V<'a>>) -> XResult<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            let a = &cmd.args[0];
            return err(
                a.pos(),
                a,
                format!("can't give argument to non-function {a}"),
            );
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &V<'a>, cmd: &Cmd, fin: Option<V<'a>>) -> XResult<V<'a>> {
        let first = &cmd.args[0];
        match first {
            Arg::Field(pos, idents) => {
                self.eval_field_chain(dot, dot.clone(), *pos, first, idents, &cmd.args[1..], fin)
            }
            Arg::Chain(pos, node, fields) => {
                let recv = self.eval_arg(dot, node)?;
                self.eval_field_chain(dot, recv, *pos, first, fields, &cmd.args[1..], fin)
            }
            Arg::Ident(pos, name) => self.eval_function(
                dot,
                *pos,
                name,
                cmd.pos,
                &cmd.to_string(),
                &cmd.args[1..],
                fin,
            ),
            Arg::Var(pos, idents) => {
                let v = self.var(*pos, &idents[0])?;
                if idents.len() == 1 {
                    self.not_a_function(cmd, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, *pos, first, &idents[1..], &cmd.args[1..], fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Nil(pos) => {
                self.not_a_function(cmd, &fin)?;
                err(*pos, first, "nil is not a command")
            }
            _ => {
                self.not_a_function(cmd, &fin)?;
                self.eval_arg(dot, first)
            }
        }
    }

    /// An argument's value, as passed to a parameter of type `any`.
    fn eval_arg(&mut self, dot: &V<'a>, a: &Arg) -> XResult<V<'a>> {
        Ok(match a {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => V::owned(Value::Null),
            Arg::Bool(_, b) => V::owned(Value::Bool(*b)),
            Arg::Num(_, n) => V::owned(n.value.clone()),
            Arg::Str(_, _, s) => V::owned(Value::String(s.clone())),
            Arg::Field(pos, idents) => {
                self.eval_field_chain(dot, dot.clone(), *pos, a, idents, &[], None)?
            }
            Arg::Var(pos, idents) => {
                let v = self.var(*pos, &idents[0])?;
                if idents.len() == 1 {
                    v
                } else {
                    self.eval_field_chain(dot, v, *pos, a, &idents[1..], &[], None)?
                }
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Ident(pos, name) => self.eval_function(dot, *pos, name, *pos, name, &[], None)?,
            Arg::Chain(pos, node, fields) => {
                let recv = self.eval_arg(dot, node)?;
                self.eval_field_chain(dot, recv, *pos, a, fields, &[], None)?
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &V<'a>,
        receiver: V<'a>,
        pos: usize,
        node: &Arg,
        idents: &[String],
        args: &[Arg],
        fin: Option<V<'a>>,
    ) -> XResult<V<'a>> {
        let n = idents.len();
        let mut recv = receiver;
        for id in &idents[..n - 1] {
            recv = self.eval_field(dot, id, pos, node, &[], None, recv)?;
        }
        self.eval_field(dot, &idents[n - 1], pos, node, args, fin, recv)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        dot: &V<'a>,
        name: &str,
        pos: usize,
        node: &Arg,
        args: &[Arg],
        fin: Option<V<'a>>,
        receiver: V<'a>,
    ) -> XResult<V<'a>> {
        let has_args = !args.is_empty() || fin.is_some();
        let recv = match receiver {
            V::Missing => {
                if self.missing == Missing::Error {
                    return err(
                        pos,
                        node,
                        format!("nil data; no entry for key {}", go_quote(name)),
                    );
                }
                return Ok(V::Missing);
            }
            V::J(c) => c,
        };
        let obj = match recv.as_ref() {
            Value::Object(o) => o,
            Value::Null => {
                return err(
                    pos,
                    node,
                    format!("nil pointer evaluating interface {{}}.{name}"),
                );
            }
            other => {
                return err(
                    pos,
                    node,
                    format!("can't evaluate field {name} in type {}", type_name(other)),
                );
            }
        };
        if has_args {
            // A method of Docker's contexts (`.Label "k"`), modelled as a map under the field.
            let method = child(&recv, name);
            if !self.header {
                match method.as_deref() {
                    Some(Value::Object(_)) => {}
                    Some(_) => {
                        return err(
                            pos,
                            node,
                            format!("{name} is not a method but has arguments"),
                        );
                    }
                    None => return err(pos, node, format!("can't evaluate field {name}")),
                }
            }
            let mut vals = Vec::new();
            for a in args {
                vals.push(ArgVal {
                    v: self.eval_arg(dot, a)?,
                    pos: a.pos(),
                    ctx: a.to_string(),
                });
            }
            if let Some(f) = fin {
                vals.push(ArgVal {
                    v: f,
                    pos,
                    ctx: node.to_string(),
                });
            }
            if vals.len() != 1 {
                return err(
                    pos,
                    node,
                    format!("wrong number of args for {name}: want 1 got {}", vals.len()),
                );
            }
            let key = vals[0].str()?.to_string();
            if self.header {
                // Docker's SubHeaderContext.Label: the last dotted part, '-' and '_' as spaces.
                let last = key.rsplit('.').next().unwrap_or("");
                return Ok(V::owned(Value::String(last.replace(['-', '_'], " "))));
            }
            let method = method.expect("checked above");
            return Ok(child(&method, &key)
                .map(V::J)
                .unwrap_or_else(|| V::owned(Value::String(String::new()))));
        }
        if let Some(v) = child(&recv, name) {
            return Ok(V::J(v));
        }
        match self.missing {
            Missing::NoValue => Ok(V::Missing),
            // The row itself is always one of Docker's structs.
            Missing::Docker if is_string_map(obj) && !std::ptr::eq(recv.as_ref(), self.root) => {
                Ok(V::Missing)
            }
            _ => err(
                pos,
                node,
                format!("map has no entry for key {}", go_quote(name)),
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_function(
        &mut self,
        dot: &V<'a>,
        pos: usize,
        name: &str,
        cmd_pos: usize,
        cmd_ctx: &str,
        args: &[Arg],
        fin: Option<V<'a>>,
    ) -> XResult<V<'a>> {
        let n = args.len() + usize::from(fin.is_some());
        let (min, max): (usize, Option<usize>) = match name {
            "and" | "or" | "index" | "slice" | "printf" | "eq" => (1, None),
            "print" | "println" => (0, None),
            "not" | "len" | "json" | "title" | "lower" | "upper" => (1, Some(1)),
            "ne" | "lt" | "le" | "gt" | "ge" | "split" | "join" | "truncate" => (2, Some(2)),
            "pad" => (3, Some(3)),
            _ => {
                return err(
                    pos,
                    name,
                    format!("{} is not a defined function", go_quote(name)),
                )
            }
        };
        match max {
            Some(m) if n != m => {
                return err(
                    pos,
                    name,
                    format!("wrong number of args for {name}: want {m} got {n}"),
                );
            }
            None if n < min => {
                return err(
                    pos,
                    name,
                    format!(
                        "wrong number of args for {name}: want at least {min} got {}",
                        args.len()
                    ),
                );
            }
            _ => {}
        }
        if name == "and" || name == "or" {
            // Evaluated lazily, as Go >= 1.18 does: the first deciding argument is the result.
            let want = name == "or";
            let mut last = V::Missing;
            for a in args {
                last = self.eval_arg(dot, a)?;
                if truth(&last) == want {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(n);
        for a in args {
            vals.push(ArgVal {
                v: self.eval_arg(dot, a)?,
                pos: a.pos(),
                ctx: a.to_string(),
            });
        }
        if let Some(f) = fin {
            vals.push(ArgVal {
                v: f,
                pos: cmd_pos,
                ctx: cmd_ctx.to_string(),
            });
        }
        let call_err = |msg: String| -> ExecErr {
            ExecErr {
                pos: cmd_pos,
                ctx: cmd_ctx.to_string(),
                msg: format!("error calling {name}: {msg}"),
            }
        };
        let s = |v: String| Ok(V::owned(Value::String(v)));
        if self.header {
            match name {
                "json" | "title" | "lower" | "upper" => return s(vals[0].str()?.to_string()),
                "split" | "join" | "truncate" => return s(vals[0].str()?.to_string()),
                _ => {}
            }
        }
        match name {
            "not" => Ok(V::owned(Value::Bool(!truth(&vals[0].v)))),
            "len" => match vals[0].v.json() {
                Some(Value::String(s)) => Ok(V::owned(Value::from(s.len() as i64))),
                Some(Value::Array(a)) => Ok(V::owned(Value::from(a.len() as i64))),
                Some(Value::Object(o)) => Ok(V::owned(Value::from(o.len() as i64))),
                None | Some(Value::Null) => Err(call_err("len of nil pointer".into())),
                Some(other) => Err(call_err(format!("len of type {}", type_name(other)))),
            },
            "index" => {
                let mut item = vals[0].v.clone();
                for idx in &vals[1..] {
                    item = index_one(item, &idx.v).map_err(call_err)?;
                }
                Ok(item)
            }
            "slice" => slice(&vals[0].v, &vals[1..])
                .map(V::owned)
                .map_err(call_err),
            "print" => s(go_sprint(
                &vals.iter().map(|a| a.v.any()).collect::<Vec<_>>(),
            )),
            "println" => s(go_sprintln(
                &vals.iter().map(|a| a.v.any()).collect::<Vec<_>>(),
            )),
            "printf" => {
                let f = vals[0].str()?.to_string();
                s(go_sprintf(
                    &f,
                    &vals[1..].iter().map(|a| a.v.any()).collect::<Vec<_>>(),
                ))
            }
            "eq" => {
                if vals.len() < 2 {
                    return Err(call_err("missing argument for comparison".into()));
                }
                for other in &vals[1..] {
                    if compare_eq(&vals[0].v, &other.v).map_err(call_err)? {
                        return Ok(V::owned(Value::Bool(true)));
                    }
                }
                Ok(V::owned(Value::Bool(false)))
            }
            "ne" => Ok(V::owned(Value::Bool(
                !compare_eq(&vals[0].v, &vals[1].v).map_err(call_err)?,
            ))),
            "lt" | "le" | "gt" | "ge" => {
                let (a, b) = (&vals[0].v, &vals[1].v);
                let r = match name {
                    "lt" => less(a, b).map_err(call_err)?,
                    "le" => less(a, b).map_err(call_err)? || compare_eq(a, b).map_err(call_err)?,
                    "gt" => {
                        !(less(a, b).map_err(call_err)? || compare_eq(a, b).map_err(call_err)?)
                    }
                    _ => !less(a, b).map_err(call_err)?,
                };
                Ok(V::owned(Value::Bool(r)))
            }
            "json" => s(go_json(&vals[0].v.any(), false).trim().to_string()),
            "split" => {
                let (text, sep) = (vals[0].str()?, vals[1].str()?);
                let parts: Vec<Value> = if sep.is_empty() {
                    text.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    text.split(sep)
                        .map(|p| Value::String(p.to_string()))
                        .collect()
                };
                Ok(V::owned(Value::Array(parts)))
            }
            "join" => {
                let sep = vals[1].str()?;
                let items: Vec<&str> = match vals[0].v.json() {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                        a.iter().filter_map(Value::as_str).collect()
                    }
                    Some(other) => {
                        return err(
                            vals[0].pos,
                            &vals[0].ctx,
                            format!(
                                "wrong type for value; expected []string; got {}",
                                type_name(other)
                            ),
                        );
                    }
                };
                s(items.join(sep))
            }
            "title" => s(go_title(vals[0].str()?)),
            "lower" => s(vals[0].str()?.chars().map(go_lower).collect()),
            "upper" => s(vals[0].str()?.chars().map(go_upper).collect()),
            "pad" => {
                let text = vals[0].str()?;
                let (pre, suf) = (vals[1].int()?, vals[2].int()?);
                if text.is_empty() {
                    return s(String::new());
                }
                if pre < 0 || suf < 0 {
                    return Err(call_err("strings: negative Repeat count".into()));
                }
                s(format!(
                    "{}{text}{}",
                    " ".repeat(pre as usize),
                    " ".repeat(suf as usize)
                ))
            }
            "truncate" => {
                let text = vals[0].str()?;
                let n = vals[1].int()?;
                if n < 0 {
                    return Err(call_err(format!("slice bounds out of range [:{n}]")));
                }
                let n = n as usize;
                if text.len() < n {
                    return s(text.to_string());
                }
                // Go cuts bytes; a String keeps whole characters.
                let mut end = n;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                s(text[..end].to_string())
            }
            _ => err(
                pos,
                name,
                format!("{} is not a defined function", go_quote(name)),
            ),
        }
    }
}

fn index_one<'a>(item: V<'a>, idx: &V<'a>) -> Result<V<'a>, String> {
    let c = match item {
        V::Missing => return Err("index of untyped nil".into()),
        V::J(c) => c,
    };
    match c.as_ref() {
        Value::Null => Err("index of untyped nil".into()),
        Value::Array(a) => {
            let i = index_arg(idx, a.len())?;
            if i == a.len() {
                return Err(format!("index out of range: {i}"));
            }
            Ok(element(&c, i).map(V::J).unwrap_or(V::Missing))
        }
        Value::String(s) => {
            let i = index_arg(idx, s.len())?;
            if i == s.len() {
                return Err(format!("index out of range: {i}"));
            }
            Ok(V::owned(Value::from(s.as_bytes()[i] as i64)))
        }
        Value::Object(o) => match idx.json() {
            Some(Value::String(k)) => match child(&c, k) {
                Some(v) => Ok(V::J(v)),
                // The zero value of the map's element type: "" for a string map.
                None if is_string_map(o) => Ok(V::owned(Value::String(String::new()))),
                None => Ok(V::Missing),
            },
            Some(other) => Err(format!(
                "value has type {}; should be string",
                type_name(other)
            )),
            None => Err("value is nil; should be string".into()),
        },
        other => Err(format!("can't index item of type {}", type_name(other))),
    }
}

fn index_arg(idx: &V, cap: usize) -> Result<usize, String> {
    let x = match idx.json() {
        Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or(0),
        Some(Value::Number(n)) if n.is_u64() => i64::MAX,
        None | Some(Value::Null) => return Err("cannot index slice/array with nil".into()),
        Some(other) => {
            return Err(format!(
                "cannot index slice/array with type {}",
                type_name(other)
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn slice(item: &V, idx: &[ArgVal]) -> Result<Value, String> {
    let Some(v) = item.json().filter(|v| !v.is_null()) else {
        return Err("slice of untyped nil".into());
    };
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match v {
        Value::String(s) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::Array(a) => a.len(),
        other => return Err(format!("can't slice item of type {}", type_name(other))),
    };
    let mut bounds = [0, len, len];
    for (i, a) in idx.iter().enumerate() {
        bounds[i] = index_arg(&a.v, len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    if idx.len() == 3 && bounds[1] > bounds[2] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[1], bounds[2]
        ));
    }
    Ok(match v {
        Value::String(s) => {
            Value::String(String::from_utf8_lossy(&s.as_bytes()[bounds[0]..bounds[1]]).into_owned())
        }
        Value::Array(a) => Value::Array(a[bounds[0]..bounds[1]].to_vec()),
        _ => unreachable!(),
    })
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Other,
}

fn kind(v: &V) -> Kind {
    match v.json() {
        None | Some(Value::Null) => Kind::Invalid,
        Some(Value::Bool(_)) => Kind::Bool,
        Some(Value::Number(n)) if n.is_i64() => Kind::Int,
        Some(Value::Number(n)) if n.is_u64() => Kind::Uint,
        Some(Value::Number(_)) => Kind::Float,
        Some(Value::String(_)) => Kind::Str,
        Some(_) => Kind::Other,
    }
}

fn num<'v>(v: &'v V) -> &'v Number {
    match v.json() {
        Some(Value::Number(n)) => n,
        _ => unreachable!("checked by kind()"),
    }
}

/// Go's `eq` for one pair (text/template funcs.go).
fn compare_eq(a: &V, b: &V) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        return match (ka, kb) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(false),
            (Kind::Invalid, _) | (_, Kind::Invalid) => Ok(false),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    Ok(match ka {
        Kind::Invalid => true,
        Kind::Bool | Kind::Str => a.json() == b.json(),
        Kind::Int => num(a).as_i64() == num(b).as_i64(),
        Kind::Uint => num(a).as_u64() == num(b).as_u64(),
        Kind::Float => num(a).as_f64() == num(b).as_f64(),
        Kind::Other => {
            let t = a.json().map(type_name).unwrap_or("");
            return Err(format!("non-comparable type {}: {t}", {
                let mut s = String::new();
                fmt_v(a.json().unwrap_or(&Value::Null), &mut s);
                s
            }));
        }
    })
}

/// Go's `lt`.
fn less(a: &V, b: &V) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    for k in [ka, kb] {
        if matches!(k, Kind::Invalid | Kind::Other | Kind::Bool) {
            return Err("invalid type for comparison".into());
        }
    }
    if ka != kb {
        return match (ka, kb) {
            // A value is Uint only above i64::MAX, so every Int is smaller.
            (Kind::Int, Kind::Uint) => Ok(true),
            (Kind::Uint, Kind::Int) => Ok(false),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    Ok(match ka {
        Kind::Int => num(a).as_i64() < num(b).as_i64(),
        Kind::Uint => num(a).as_u64() < num(b).as_u64(),
        Kind::Float => num(a).as_f64().unwrap_or(0.0) < num(b).as_f64().unwrap_or(0.0),
        Kind::Str => a.json().and_then(Value::as_str) < b.json().and_then(Value::as_str),
        _ => unreachable!(),
    })
}

/// strings.Title: the first letter of each word in title case.
fn go_title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_sep(prev) { go_upper(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// unicode.ToUpper: one character to one character (Rust's may expand, e.g. ß -> SS).
fn go_upper(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn go_lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

// ---------------------------------------------------------------------------------------
// Printing values as Go's fmt does

/// What an action prints: Go's printValue.
fn print_value(v: &V, out: &mut String) {
    match v.json() {
        None => out.push_str("<no value>"),
        Some(j) => fmt_v(j, out),
    }
}

/// fmt's `%v` of a value.
fn fmt_v(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => out.push_str(&fmt_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(e, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push_str("map[");
            let sorted: BTreeMap<&String, &Value> = o.iter().collect();
            for (i, (k, e)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_v(e, out);
            }
            out.push(']');
        }
    }
}

fn fmt_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_format_float(n.as_f64().unwrap_or(0.0), 'g', None)
    }
}

/// The decimal digits of |f| (no trailing zeros, at least "0") and the position of the
/// decimal point, rounded to `sig` significant digits or shortest round-trip when None.
fn float_digits(f: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.max(1) - 1, f.abs()),
        None => format!("{:e}", f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if digits == "0" {
        return (digits, 1);
    }
    (digits, exp + 1)
}

fn e_form(digits: &str, dp: i32, upper: bool) -> String {
    let mut s = String::new();
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    let exp = if digits == "0" { 0 } else { dp - 1 };
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(s, "{:02}", exp.abs());
    s
}

fn f_form(digits: &str, dp: i32) -> String {
    let nd = digits.len() as i32;
    if digits == "0" {
        return "0".into();
    }
    if dp <= 0 {
        format!("0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        format!("{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    }
}

/// strconv.FormatFloat(f, fmt, prec, 64) for fmt in e E f F g G; `prec` None = shortest
/// (-1). `%v` of a float is ('g', None); HumanSize is ('g', Some(3 or 4)).
pub(crate) fn go_format_float(f: f64, fmt: char, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let body = match fmt {
        'e' | 'E' => match prec {
            Some(p) => {
                let s = format!("{:.*e}", p, f.abs());
                let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                format!(
                    "{m}{}{}{:02}",
                    if fmt == 'E' { 'E' } else { 'e' },
                    if e < 0 { '-' } else { '+' },
                    e.abs()
                )
            }
            None => {
                let (d, dp) = float_digits(f, None);
                e_form(&d, dp, fmt == 'E')
            }
        },
        'f' | 'F' => match prec {
            Some(p) => format!("{:.*}", p, f.abs()),
            None => format!("{}", f.abs()),
        },
        _ => {
            let (d, dp) = float_digits(f, prec.map(|p| p.max(1)));
            let exp = dp - 1;
            let eprec = match prec {
                None => 6,
                Some(p) => {
                    let p = p.max(1) as i32;
                    let nd = d.len() as i32;
                    if p > nd && nd >= dp {
                        nd
                    } else {
                        p
                    }
                }
            };
            if d != "0" && (exp < -4 || exp >= eprec) {
                e_form(&d, dp, fmt == 'G')
            } else {
                f_form(&d, dp)
            }
        }
    };
    format!("{sign}{body}")
}

/// The Go type name fmt's %T prints for a value held in an `any`.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        other => type_name(other),
    }
}

/// fmt.Sprint: spaces between operands when neither is a string.
pub(crate) fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = a.is_string();
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        fmt_v(a, &mut out);
        prev_string = is_string;
    }
    out
}

/// fmt.Sprintln: spaces always, newline at the end.
pub(crate) fn go_sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        fmt_v(a, &mut out);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, fl: &Flags, numeric: bool) -> String {
    let w = match fl.width {
        Some(w) => w,
        None => return s,
    };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if fl.minus {
        return format!("{s}{}", " ".repeat(fill));
    }
    if fl.zero {
        // Zeros go after the sign.
        if numeric && (s.starts_with('-') || s.starts_with('+') || s.starts_with(' ')) {
            let (sign, rest) = s.split_at(1);
            return format!("{sign}{}{rest}", "0".repeat(fill));
        }
        return format!("{}{s}", "0".repeat(fill));
    }
    format!("{}{s}", " ".repeat(fill))
}

fn bad_verb(verb: char, v: &Value) -> String {
    if v.is_null() {
        return format!("%!{verb}(<nil>)");
    }
    let mut s = String::new();
    fmt_v(v, &mut s);
    format!("%!{verb}({}={s})", go_type(v))
}

fn fmt_int(neg: bool, mag: u128, verb: char, fl: &Flags) -> String {
    let mut digits = match verb {
        'b' => format!("{mag:b}"),
        'o' | 'O' => format!("{mag:o}"),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        _ => mag.to_string(),
    };
    if let Some(p) = fl.prec {
        if p == 0 && mag == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'O' => "0o",
        'x' if fl.sharp => "0x",
        'X' if fl.sharp => "0X",
        'b' if fl.sharp => "0b",
        'o' if fl.sharp && !digits.starts_with('0') => "0",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if fl.plus {
        "+"
    } else if fl.space {
        " "
    } else {
        ""
    };
    let mut fl2 = *fl;
    if fl.prec.is_some() {
        fl2.zero = false;
    }
    if fl2.zero && !fl2.minus {
        if let Some(w) = fl2.width {
            let used = sign.len() + prefix.len() + digits.len();
            if used < w {
                return format!("{sign}{prefix}{}{digits}", "0".repeat(w - used));
            }
        }
    }
    pad(format!("{sign}{prefix}{digits}"), &fl2, false)
}

fn fmt_one(v: &Value, verb: char, fl: &Flags) -> String {
    if verb == 'T' {
        return pad(go_type(v).to_string(), fl, false);
    }
    match v {
        Value::Null => {
            if verb == 'v' {
                pad("<nil>".into(), fl, false)
            } else {
                bad_verb(verb, v)
            }
        }
        Value::Bool(b) => match verb {
            'v' | 't' => pad(b.to_string(), fl, false),
            _ => bad_verb(verb, v),
        },
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            let (neg, mag) = match n.as_i64() {
                Some(i) => (i < 0, i.unsigned_abs() as u128),
                None => (false, n.as_u64().unwrap_or(0) as u128),
            };
            match verb {
                'v' | 'd' | 'b' | 'o' | 'O' | 'x' | 'X' => fmt_int(neg, mag, verb, fl),
                'c' => pad(
                    char::from_u32(mag as u32)
                        .filter(|_| !neg)
                        .unwrap_or('\u{fffd}')
                        .to_string(),
                    fl,
                    false,
                ),
                'q' => {
                    let c = char::from_u32(mag as u32)
                        .filter(|_| !neg)
                        .unwrap_or('\u{fffd}');
                    let q = go_quote(&c.to_string());
                    pad(
                        format!("'{}'", &q[1..q.len() - 1].replace("\\\"", "\"")),
                        fl,
                        false,
                    )
                }
                'U' => {
                    let mut s = format!("U+{mag:04X}");
                    if fl.sharp {
                        if let Some(c) = char::from_u32(mag as u32) {
                            let _ = write!(s, " '{c}'");
                        }
                    }
                    pad(s, fl, false)
                }
                _ => bad_verb(verb, v),
            }
        }
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let body = match verb {
                'v' => go_format_float(f, 'g', fl.prec),
                'g' | 'G' | 'e' | 'E' => go_format_float(
                    f,
                    verb,
                    fl.prec.or(if matches!(verb, 'e' | 'E') {
                        Some(6)
                    } else {
                        None
                    }),
                ),
                'f' | 'F' => go_format_float(f, 'f', Some(fl.prec.unwrap_or(6))),
                _ => return bad_verb(verb, v),
            };
            let body = if !body.starts_with('-') && fl.plus {
                format!("+{body}")
            } else if !body.starts_with('-') && fl.space {
                format!(" {body}")
            } else {
                body
            };
            let mut fl2 = *fl;
            if !f.is_finite() {
                fl2.zero = false;
            }
            pad(body, &fl2, true)
        }
        Value::String(s) => match verb {
            'v' | 's' => {
                let s: String = match fl.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                pad(s, fl, false)
            }
            'q' => pad(go_quote(s), fl, false),
            'x' | 'X' => {
                let mut h = String::new();
                for b in s.bytes() {
                    if verb == 'x' {
                        let _ = write!(h, "{b:02x}");
                    } else {
                        let _ = write!(h, "{b:02X}");
                    }
                }
                pad(h, fl, false)
            }
            _ => bad_verb(verb, v),
        },
        Value::Array(a) => {
            let mut s = String::from("[");
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&fmt_one(e, verb, fl));
            }
            s.push(']');
            s
        }
        Value::Object(o) => {
            let mut s = String::from("map[");
            let sorted: BTreeMap<&String, &Value> = o.iter().collect();
            for (i, (k, e)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&fmt_one(&Value::String(k.clone()), verb, fl));
                s.push(':');
                s.push_str(&fmt_one(e, verb, fl));
            }
            s.push(']');
            s
        }
    }
}

/// fmt.Sprintf with Go's verbs, flags, width and precision, and its inline error forms
/// (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`).
pub(crate) fn go_sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut cs = format.chars().peekable();
    while let Some(c) = cs.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut fl = Flags::default();
        while let Some(&f) = cs.peek() {
            match f {
                '+' => fl.plus = true,
                '-' => fl.minus = true,
                '#' => fl.sharp = true,
                ' ' => fl.space = true,
                '0' => fl.zero = true,
                _ => break,
            }
            cs.next();
        }
        let take_num = |cs: &mut std::iter::Peekable<std::str::Chars>,
                        argi: &mut usize|
         -> Result<Option<usize>, ()> {
            if cs.peek() == Some(&'*') {
                cs.next();
                let a = args.get(*argi);
                *argi += 1;
                return match a.and_then(Value::as_i64) {
                    Some(n) if (0..=1_000_000).contains(&n) => Ok(Some(n as usize)),
                    _ => Err(()),
                };
            }
            let mut n: Option<usize> = None;
            while let Some(d) = cs.peek().and_then(|c| c.to_digit(10)) {
                n = Some(
                    n.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(d as usize)
                        .min(1_000_000),
                );
                cs.next();
            }
            Ok(n)
        };
        match take_num(&mut cs, &mut argi) {
            Ok(w) => fl.width = w,
            Err(()) => out.push_str("%!(BADWIDTH)"),
        }
        if cs.peek() == Some(&'.') {
            cs.next();
            match take_num(&mut cs, &mut argi) {
                Ok(p) => fl.prec = Some(p.unwrap_or(0)),
                Err(()) => out.push_str("%!(BADPREC)"),
            }
        }
        let Some(verb) = cs.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => {
                let _ = write!(out, "%!{verb}(MISSING)");
            }
            Some(a) => out.push_str(&fmt_one(a, verb, &fl)),
        }
        argi += 1;
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if a.is_null() {
                out.push_str("<nil>");
            } else {
                out.push_str(go_type(a));
                out.push('=');
                fmt_v(a, &mut out);
            }
        }
        out.push(')');
    }
    out
}

// ---------------------------------------------------------------------------------------
// Go's encoding/json

fn json_float(f: f64) -> String {
    if !f.is_finite() {
        // Go refuses these (UnsupportedValueError); a Value cannot hold them anyway.
        return "null".into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = go_format_float(f, 'e', None);
        // Go cleans e-09 up to e-9.
        if let Some(i) = s.find("e-0") {
            return format!("{}e-{}", &s[..i], &s[i + 3..]);
        }
        return s;
    }
    go_format_float(f, 'f', None)
}

fn json_value(v: &Value, esc: bool, indent: Option<&str>, depth: usize, out: &mut String) {
    let nl = |out: &mut String, d: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..d {
                out.push_str(ind);
            }
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                out.push_str(&n.to_string());
            } else {
                out.push_str(&json_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => go_json_string(s, esc, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                json_value(e, esc, indent, depth + 1, out);
            }
            if !a.is_empty() {
                nl(out, depth);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                go_json_string(k, esc, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                json_value(e, esc, indent, depth + 1, out);
            }
            if !o.is_empty() {
                nl(out, depth);
            }
            out.push('}');
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tabwriter (docker/cli cli/command/formatter/tabwriter, a copy of Go's text/tabwriter
// that measures cells in terminal columns)

#[derive(Clone, Copy, Default, Debug)]
struct Cell {
    size: usize,
    width: usize,
    htab: bool,
}

/// Elastic tabstops: tab-terminated cells of consecutive lines form a column, padded to
/// the widest cell plus `padding`, at least `minwidth`. The text after a line's last tab is
/// not part of a column. A line without tabs ends the block of lines aligned together.
pub(crate) struct TabWriter {
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: u8,
    buf: Vec<u8>,
    pos: usize,
    cell: Cell,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: Vec<u8>,
}

impl TabWriter {
    pub(crate) fn new(minwidth: usize, tabwidth: usize, padding: usize, padchar: u8) -> TabWriter {
        TabWriter {
            minwidth,
            tabwidth,
            padding,
            padchar,
            buf: Vec::new(),
            pos: 0,
            cell: Cell::default(),
            lines: vec![Vec::new()],
            widths: Vec::new(),
            out: Vec::new(),
        }
    }

    /// docker/cli's tables: `tabwriter.NewWriter(output, 10, 1, 3, ' ', 0)`.
    pub(crate) fn docker() -> TabWriter {
        TabWriter::new(10, 1, 3, b' ')
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.cell = Cell::default();
        self.lines.clear();
        self.lines.push(Vec::new());
        self.widths.clear();
    }

    fn append(&mut self, text: &[u8]) {
        self.buf.extend_from_slice(text);
        self.cell.size += text.len();
    }

    fn update_width(&mut self) {
        let cell = &self.buf[self.pos..];
        // ASCII (most cells of most tables): one column a byte, none for control bytes.
        self.cell.width += if cell.is_ascii() {
            cell.iter().filter(|&&b| b >= 0x20 && b != 0x7f).count()
        } else {
            display_width(&String::from_utf8_lossy(cell))
        };
        self.pos = self.buf.len();
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        self.cell.htab = htab;
        let line = self.lines.last_mut().expect("always one line");
        line.push(self.cell);
        self.cell = Cell::default();
        line.len()
    }

    fn write_padding(&mut self, textw: usize, cellw: usize) {
        if self.padchar == b'\t' {
            if self.tabwidth == 0 {
                return;
            }
            let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
            let n = cellw.saturating_sub(textw);
            self.out
                .extend(std::iter::repeat_n(b'\t', n.div_ceil(self.tabwidth)));
            return;
        }
        self.out.extend(std::iter::repeat_n(
            self.padchar,
            cellw.saturating_sub(textw),
        ));
    }

    fn write_lines(&mut self, mut pos: usize, line0: usize, line1: usize) -> usize {
        for i in line0..line1 {
            // Taken out for the while (not copied: a long table is a copy per line).
            let line = std::mem::take(&mut self.lines[i]);
            for (j, c) in line.iter().enumerate() {
                if c.size > 0 {
                    self.out.extend_from_slice(&self.buf[pos..pos + c.size]);
                    pos += c.size;
                }
                if j < self.widths.len() {
                    let w = self.widths[j];
                    self.write_padding(c.width, w);
                }
            }
            self.lines[i] = line;
            if i + 1 == self.lines.len() {
                let n = self.cell.size;
                self.out.extend_from_slice(&self.buf[pos..pos + n]);
                pos += n;
            } else {
                self.out.push(b'\n');
            }
        }
        pos
    }

    fn format(&mut self, pos0: usize, line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        let mut line0 = line0;
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            pos = self.write_lines(pos, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                let c = line[column];
                width = width.max(c.width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            pos = self.format(pos, line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(pos, line0, line1)
    }

    fn flush_internal(&mut self) {
        if self.cell.size > 0 {
            self.terminate_cell(false);
        }
        // The text and some padding: a long table grows the output once, if at all.
        self.out.reserve(self.buf.len() + self.buf.len() / 2);
        let n = self.lines.len();
        self.format(0, 0, n);
        self.reset();
    }

    pub(crate) fn write(&mut self, text: &str) {
        let bytes = text.as_bytes();
        self.buf.reserve(bytes.len());
        let mut n = 0;
        for (i, &ch) in bytes.iter().enumerate() {
            if matches!(ch, b'\t' | b'\x0b' | b'\n' | b'\x0c') {
                self.append(&bytes[n..i]);
                self.update_width();
                n = i + 1;
                let ncells = self.terminate_cell(ch == b'\t');
                if ch == b'\n' || ch == b'\x0c' {
                    self.lines.push(Vec::new());
                    if ch == b'\x0c' || ncells == 1 {
                        self.flush_internal();
                    }
                }
            }
        }
        self.append(&bytes[n..]);
    }

    /// Formats what is buffered and returns everything written so far.
    pub(crate) fn flush(&mut self) -> String {
        self.flush_internal();
        let out = std::mem::take(&mut self.out);
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Terminal columns of a string, as go-runewidth counts them: East Asian wide and
/// fullwidth characters take two, combining marks and zero-width characters none.
pub(crate) fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let u = c as u32;
            match u {
                0..=0x1f | 0x7f..=0x9f => 0,
                0x300..=0x36f
                | 0x1ab0..=0x1aff
                | 0x1dc0..=0x1dff
                | 0x20d0..=0x20ff
                | 0xfe20..=0xfe2f => 0,
                0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2064 | 0xfeff => 0,
                0x1100..=0x115f
                | 0x2e80..=0x303e
                | 0x3041..=0x33ff
                | 0x3400..=0x4dbf
                | 0x4e00..=0x9fff
                | 0xa000..=0xa4cf
                | 0xac00..=0xd7a3
                | 0xf900..=0xfaff
                | 0xfe30..=0xfe4f
                | 0xff00..=0xff60
                | 0xffe0..=0xffe6
                | 0x1f300..=0x1f64f
                | 0x1f900..=0x1f9ff
                | 0x20000..=0x3fffd => 2,
                _ => 1,
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_ascii_cell_is_as_wide_as_display_width_says() {
        // The tabwriter's ASCII shortcut counts what display_width counts.
        for b in 0u8..128 {
            let want = usize::from(b >= 0x20 && b != 0x7f);
            assert_eq!(display_width(&char::from(b).to_string()), want, "{b:#x}");
        }
        let mut tw = TabWriter::docker();
        tw.write("a\x01b\tc\nnamé\td\n");
        assert_eq!(tw.flush(), "a\x01b        c\nnamé      d\n");
    }

    #[test]
    fn may_read_names_the_fields_a_template_can_reach() {
        let f = Formatter::new(None, "table {{.ID}}\t{{.Names}}").unwrap();
        assert!(f.may_read("ID") && f.may_read("Names"));
        assert!(!f.may_read("Labels") && !f.may_read("CreatedAt"));
        for whole in [
            "json",
            "{{json .}}",
            "{{index . \"Labels\"}}",
            "{{range $k, $v := .}}{{$k}}{{end}}",
            "{{with .}}{{.ID}}{{end}}",
        ] {
            let f = Formatter::new(Some(whole), "table {{.ID}}").unwrap();
            assert!(f.may_read("Labels"), "{whole}");
        }
        let f = Formatter::new(Some("{{$.Labels}} {{.Status | printf \"%s\"}}"), "").unwrap();
        assert!(f.may_read("Labels") && f.may_read("Status") && !f.may_read("Mounts"));
    }

    fn run(t: &str, data: &Value) -> String {
        Template::parse(t)
            .unwrap_or_else(|e| panic!("parse {t:?}: {e}"))
            .execute(data)
            .unwrap_or_else(|e| panic!("execute {t:?}: {e}"))
    }

    fn parse_err(t: &str) -> String {
        Template::parse(t).expect_err(t).0
    }

    fn exec_err(t: &str, data: &Value) -> String {
        Template::parse(t).unwrap().execute(data).expect_err(t).0
    }

    #[test]
    fn parse_errors_read_as_go() {
        for (t, want) in [
            ("{{.ID}", r#"template: :1: unexpected "}" in operand"#),
            ("{{.ID", "template: :1: unclosed action"),
            ("{{if .X}}a", "template: :1: unexpected EOF"),
            ("{{end}}", "template: :1: unexpected {{end}}"),
            ("{{else}}", "template: :1: unexpected {{else}}"),
            ("{{foo .X}}", r#"template: :1: function "foo" not defined"#),
            ("{{range}}{{end}}", "template: :1: missing value for range"),
            ("{{}}", "template: :1: missing value for command"),
            ("{{$x}}", r#"template: :1: undefined variable "$x""#),
            (
                "{{.X | \"a\"}}",
                "template: :1: non executable command in pipeline stage 2",
            ),
            ("{{\"abc}}", "template: :1: unterminated quoted string"),
            ("{{.A!}}", "template: :1: bad character U+0021 '!'"),
            ("{{3x}}", r#"template: :1: bad number syntax: "3x""#),
            ("{{break}}", "template: :1: {{break}} outside {{range}}"),
            ("{{(.A}}", "template: :1: unclosed left paren"),
            ("{{.A)}}", "template: :1: unexpected right paren"),
            ("{{/* x }}", "template: :1: unclosed comment"),
            ("a\nb\n{{.ID}", r#"template: :3: unexpected "}" in operand"#),
            ("{{if}}{{end}}", "template: :1: missing value for if"),
            (
                "{{range .X}}{{else}}{{else}}{{end}}",
                "template: :1: expected end; found {{else}}",
            ),
            (
                "{{\"x\".A}}",
                r#"template: :1: unexpected . after term "\"x\"""#,
            ),
            (
                "{{.A 'ab'}}",
                "template: :1: malformed character constant: 'ab'",
            ),
            ("{{.A \"\\q\"}}", "template: :1: invalid syntax"),
            (
                "{{json .X .Y .Z .W .V .U}} {{.A a_very_long_word}}",
                r#"template: :1: function "a_very_long_word" not defined"#,
            ),
            ("{{.A = 1}}", r#"template: :1: unexpected "=" in operand"#),
        ] {
            assert_eq!(parse_err(t), want, "template {t:?}");
        }
    }

    #[test]
    fn docker_wraps_parse_errors() {
        let e = Formatter::new(Some("{{.ID}"), "table {{.ID}}").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"template parsing error: template: :1: unexpected "}" in operand"#
        );
    }

    #[test]
    fn fields_text_and_missing_keys() {
        let d = json!({"ID": "abc", "State": {"Pid": 42, "Running": true, "Health": null},
                       "Config": {"Labels": {"a": "1"}}, "Size": 1.5});
        assert_eq!(run("id={{.ID}} pid={{.State.Pid}}", &d), "id=abc pid=42");
        assert_eq!(run("{{.State.Running}} {{.Size}}", &d), "true 1.5");
        assert_eq!(run("{{.State.Health}}", &d), "<nil>");
        // A missing key of a string map prints <no value>; of a struct-like object, fails.
        assert_eq!(run("{{.Config.Labels.nope}}", &d), "<no value>");
        assert_eq!(
            exec_err("{{.Nope}}", &d),
            r#"template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
        let t = Template::parse("{{.Nope}}|{{.Nope.Deeper}}").unwrap();
        assert_eq!(
            t.execute_with(&d, Missing::NoValue).unwrap(),
            "<no value>|<no value>"
        );
        assert_eq!(
            t.execute_with(&d, Missing::Error).unwrap_err().0,
            r#"template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
        assert_eq!(
            exec_err("x {{.State.Health.Status}}", &d),
            r#"template: :1:4: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status"#
        );
        assert_eq!(
            exec_err("{{.ID.X}}", &d),
            r#"template: :1:2: executing "" at <.ID.X>: can't evaluate field X in type string"#
        );
        assert_eq!(
            run("{{.}}", &json!({"b": [1, "x", null], "a": {"k": false}})),
            "map[a:map[k:false] b:[1 x <nil>]]"
        );
        // Multi-line: line and column of the failing node.
        assert_eq!(
            exec_err("a\n  {{.Nope}}", &d),
            r#"template: :2:4: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
    }

    #[test]
    fn json_function_is_go_encoding_without_html_escaping() {
        let d = json!({"Name": "a<b>&c", "Labels": {"z": "1", "a": "2"}, "Ports": [], "F": 1e21,
                       "Ctl": "\u{1}\t\u{2028}", "N": null});
        assert_eq!(run("{{json .Name}}", &d), r#""a<b>&c""#);
        assert_eq!(run("{{json .Labels}}", &d), r#"{"z":"1","a":"2"}"#);
        assert_eq!(
            run("{{json .Ports}} {{json .F}} {{json .N}}", &d),
            "[] 1e+21 null"
        );
        assert_eq!(run("{{json .Ctl}}", &d), r#""\u0001\t\u2028""#);
        assert_eq!(run("{{json .Missing}}", &json!({"Missing": {}})), "{}");
        assert_eq!(run("{{json .A.Nope}}", &json!({"A": {}})), "null");
    }

    #[test]
    fn go_json_encoding() {
        let v = json!({"log": "<a href=\"x\">&</a>\n", "b": [1, 2.5, -0.0000001, true], "e": {}, "f": []});
        assert_eq!(
            go_json(&v, true),
            r#"{"log":"\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e\n","b":[1,2.5,-1e-7,true],"e":{},"f":[]}"#
        );
        assert_eq!(
            go_json_indent(&json!([{"a": [1, 2], "b": {}}]), "    ", true),
            "[\n    {\n        \"a\": [\n            1,\n            2\n        ],\n        \"b\": {}\n    }\n]"
        );
        assert_eq!(go_json_indent(&json!([]), "    ", true), "[]");
        for (f, want) in [
            (100.0, "100"),
            (0.1, "0.1"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (123456789.0, "123456789"),
        ] {
            assert_eq!(go_json(&json!(f), false), want, "{f}");
        }
    }

    #[test]
    fn control_structures() {
        let d = json!({"Names": ["a", "b", "c"], "Map": {"y": 2, "x": 1}, "Empty": [], "T": true, "F": false, "S": ""});
        assert_eq!(run("{{range .Names}}[{{.}}]{{end}}", &d), "[a][b][c]");
        assert_eq!(
            run("{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}", &d),
            "0=a 1=b 2=c "
        );
        assert_eq!(run("{{range $n := .Names}}{{$n}}{{end}}", &d), "abc");
        assert_eq!(
            run("{{range $k, $v := .Map}}{{$k}}:{{$v}};{{end}}", &d),
            "x:1;y:2;"
        );
        assert_eq!(run("{{range .Empty}}x{{else}}none{{end}}", &d), "none");
        assert_eq!(
            run(
                "{{range .Nope}}x{{else}}none{{end}}",
                &json!({"Nope": null})
            ),
            "none"
        );
        assert_eq!(
            run(
                "{{range .Names}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}",
                &d
            ),
            "ac"
        );
        assert_eq!(
            run(
                "{{range .Names}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}!",
                &d
            ),
            "a!"
        );
        assert_eq!(run("{{range 3}}{{.}}{{end}}", &d), "012");
        assert_eq!(
            run(
                "{{if .F}}f{{else if .S}}s{{else if .T}}t{{else}}e{{end}}",
                &d
            ),
            "t"
        );
        assert_eq!(
            run("{{if .Empty}}y{{else}}n{{end}}{{if not .F}}!{{end}}", &d),
            "n!"
        );
        assert_eq!(
            run(
                "{{with .Map}}{{.x}}{{else}}none{{end}}{{with .S}}x{{else}}empty{{end}}",
                &d
            ),
            "1empty"
        );
        assert_eq!(
            run("{{$x := .T}}{{if $x}}{{$x = \"set\"}}{{end}}{{$x}}", &d),
            "set"
        );
        assert_eq!(
            run("{{$n := 0}}{{range .Names}}{{$n = .}}{{end}}{{$n}}", &d),
            "c"
        );
        assert_eq!(run("{{range .Names}}{{$.T}}{{end}}", &d), "truetruetrue");
        assert_eq!(run("{{/* comment */}}a {{- /* c2 */ -}} b", &d), "ab");
        assert_eq!(
            exec_err("{{range .S}}{{end}}", &json!({"S": "abc"})),
            r#"template: :1:8: executing "" at <{{range .S}}>: range can't iterate over abc"#
        );
    }

    #[test]
    fn trim_markers() {
        let d = json!({"X": "x"});
        assert_eq!(run("a  \n {{- .X -}} \n  b", &d), "axb");
        assert_eq!(run("a {{.X -}} b", &d), "a xb");
        assert_eq!(run("a {{- .X}} b", &d), "ax b");
        // "-3" without the space is a number, not a trim marker.
        assert_eq!(run("a {{-3}} b", &d), "a -3 b");
    }

    #[test]
    fn pipelines_and_functions() {
        let d = json!({"Name": "web_server", "Args": ["-c", "echo hi"], "Labels": {"com.x": "y"},
                       "N": 3, "Big": 1234567, "Pi": 1.23456, "Cmd": "/bin/sh -c long"});
        for (t, want) in [
            ("{{.Name | upper}}", "WEB_SERVER"),
            ("{{upper .Name | lower}}", "web_server"),
            ("{{title \"hello world-foo_bar\"}}", "Hello World-Foo_bar"),
            ("{{join .Args \" \"}}", "-c echo hi"),
            ("{{split \"a:b:c\" \":\"}}", "[a b c]"),
            ("{{index (split \"a:b:c\" \":\") 1}}", "b"),
            ("{{len .Args}} {{len .Name}} {{len .Labels}}", "2 10 1"),
            ("{{index .Args 1}}", "echo hi"),
            ("{{index .Labels \"com.x\"}}|{{index .Labels \"nope\"}}|", "y||"),
            ("{{pad .Name 2 1}}|{{pad \"\" 2 2}}|", "  web_server ||"),
            ("{{truncate .Cmd 7}}|{{truncate \"ab\" 5}}", "/bin/sh|ab"),
            ("{{.Name | printf \"%s!\"}}", "web_server!"),
            ("{{printf \"%5s|%-5s|%05d|%x|%q|%.2f|%v|%d\" \"ab\" \"cd\" 42 255 \"hi\" .Pi true \"x\"}}",
             r#"   ab|cd   |00042|ff|"hi"|1.23|true|%!d(string=x)"#),
            ("{{printf \"%s %s\" \"a\"}}", "a %!s(MISSING)"),
            ("{{printf \"%s\" \"a\" 1}}", "a%!(EXTRA int=1)"),
            ("{{printf \"%v %T %T\" .Args .Pi .Labels}}", "[-c echo hi] float64 map[string]interface {}"),
            ("{{printf \"%+d %6.2f %e %g %g\" 5 .Pi 1234.5678 .Pi .Big}}", "+5   1.23 1.234568e+03 1.23456 %!g(int=1234567)"),
            ("{{printf \"%3c|%U|%#x|%o|%b\" 65 65 255 8 5}}", "  A|U+0041|0xff|10|101"),
            ("{{print \"a\" 1 2 \"b\" .Pi}}", "a1 2b1.23456"),
            ("{{printf \"%q|%5.1f|%-8.3s|%x|%t\" 65 3.14159 \"abcdef\" \"hi\" true}}", "'A'|  3.1|abc     |6869|true"),
            ("{{printf \"%08.3f|%+.2e|%6d|%-6d|%%\" -3.14159 12345.678 -42 7}}", "-003.142|+1.23e+04|   -42|7     |%"),
            ("{{printf \"%s|%v|%d\" .Args .Labels .N}}", "[-c echo hi]|map[com.x:y]|3"),
            ("{{printf \"%s\" nil}} {{printf \"%v\" nil}}", "%!s(<nil>) <nil>"),
            ("{{len \"h\\u00e9llo\"}} {{index \"abc\" 1}} {{slice \"h\\u00e9llo\" 1 3}}", "6 98 \u{e9}"),
            ("{{println \"a\" 1}}", "a 1\n"),
            ("{{eq .N 3}} {{eq .Name \"x\" \"web_server\"}} {{ne .N 4}} {{lt .N 4}} {{le 3 .N}} {{gt .Name \"a\"}} {{ge 2 3}}", "true true true true true true false"),
            ("{{eq .Labels.nope \"x\"}}", "false"),
            ("{{and .N .Name}} {{and 0 .Nope.Deep}} {{or \"\" .Name}} {{or 0 \"\"}} {{not .N}}", "web_server 0 web_server  false"),
            ("{{.Big}} {{.Pi}} {{1e6}} {{0x10}} {{-2}} {{'a'}} {{true}}", "1234567 1.23456 1e+06 16 -2 97 true"),
            ("{{slice .Name 4}} {{slice .Args 0 1}}", "server [-c]"),
            ("{{.Labels}}", "map[com.x:y]"),
            ("{{(index .Args 0)}} {{(.Labels).nope}} {{(.Labels)}}", "-c <no value> map[com.x:y]"),
        ] {
            assert_eq!(run(t, &d), want, "template {t:?}");
        }
    }

    #[test]
    fn execution_errors_name_the_node() {
        let d = json!({"A": [1, 2], "N": 3, "S": "x", "O": {"k": 1}});
        for (t, want) in [
            (
                "{{index .A 5}}",
                r#"template: :1:2: executing "" at <index .A 5>: error calling index: index out of range: 5"#,
            ),
            (
                "{{upper .N}}",
                r#"template: :1:8: executing "" at <.N>: wrong type for value; expected string; got int"#,
            ),
            (
                "{{upper}}",
                r#"template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 0"#,
            ),
            (
                "{{lt .S 1}}",
                r#"template: :1:2: executing "" at <lt .S 1>: error calling lt: incompatible types for comparison"#,
            ),
            (
                "{{eq .A .A}}",
                r#"template: :1:2: executing "" at <eq .A .A>: error calling eq: non-comparable type [1 2]: []interface {}"#,
            ),
            (
                "{{len .N}}",
                r#"template: :1:2: executing "" at <len .N>: error calling len: len of type int"#,
            ),
            (
                "{{join .O \",\"}}",
                r#"template: :1:7: executing "" at <.O>: wrong type for value; expected []string; got map[string]interface {}"#,
            ),
            (
                "{{.S 1}}",
                r#"template: :1:2: executing "" at <.S>: S is not a method but has arguments"#,
            ),
            (
                "{{\"a\" 1}}",
                r#"template: :1:2: executing "" at <"a">: can't give argument to non-function "a""#,
            ),
            (
                "{{index .O \"really-long-key-name\" | printf \"%v-%v\" 1}}",
                r#"template: :1:2: executing "" at <index .O "really-lo...>: error calling index: index of untyped nil"#,
            ),
        ] {
            let got = Template::parse(t).unwrap().execute(&d);
            // The last case errors only after printf: index yields a missing value first.
            if t.contains("really") {
                assert_eq!(got.unwrap(), "1-<nil>");
                continue;
            }
            assert_eq!(got.unwrap_err().0, want, "template {t:?}");
        }
    }

    #[test]
    fn methods_with_arguments_index_maps() {
        let d = json!({"Label": {"com.example.foo-bar": "v"}, "Labels": "com.example.foo-bar=v"});
        assert_eq!(
            run("{{.Label \"com.example.foo-bar\"}}|{{.Label \"x\"}}|", &d),
            "v||"
        );
        assert_eq!(run("{{\"com.example.foo-bar\" | .Label}}", &d), "v");
        let f = Formatter::new(
            Some("table {{.Label \"com.example.foo-bar\"}}\t{{.Labels}}"),
            "",
        )
        .unwrap();
        let out = f.render(&[d], &json!({"Labels": "LABELS"})).unwrap();
        assert_eq!(out, "foo bar   LABELS\nv         com.example.foo-bar=v\n");
    }

    #[test]
    fn table_directive_aligns_like_docker() {
        let headers = json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Names": "NAMES"});
        let rows = vec![
            json!({"ID": "0123456789ab", "Image": "busybox", "Names": "web"}),
            json!({"ID": "ba9876543210", "Image": "nginx:latest", "Names": "db"}),
        ];
        let dflt = "table {{.ID}}\\t{{.Image}}\\t{{.Names}}";
        for given in [None, Some(""), Some("table")] {
            let f = Formatter::new(given, dflt).unwrap();
            assert!(f.is_table());
            assert_eq!(
                f.render(&rows, &headers).unwrap(),
                "CONTAINER ID   IMAGE          NAMES\n\
                 0123456789ab   busybox        web\n\
                 ba9876543210   nginx:latest   db\n"
            );
        }
        // No rows: the header alone; columns at least 10 wide.
        let f = Formatter::new(None, dflt).unwrap();
        assert_eq!(
            f.render(&[], &headers).unwrap(),
            "CONTAINER ID   IMAGE     NAMES\n"
        );
        // A user table with header functions left alone.
        let f = Formatter::new(Some("table {{upper .Names}}\t{{json .ID}}"), dflt).unwrap();
        assert_eq!(
            f.render(&rows[..1], &headers).unwrap(),
            "NAMES     CONTAINER ID\nWEB       \"0123456789ab\"\n"
        );
    }

    #[test]
    fn raw_and_json_formats() {
        let rows = vec![
            json!({"ID": "a", "Names": "x<y"}),
            json!({"ID": "b", "Names": "z"}),
        ];
        let f = Formatter::new(Some("{{.ID}}\\t{{.Names}}"), "table {{.ID}}").unwrap();
        assert!(!f.is_table());
        assert_eq!(f.render(&rows, &json!({})).unwrap(), "a\tx<y\nb\tz\n");
        let f = Formatter::new(Some("json"), "table {{.ID}}").unwrap();
        assert_eq!(
            f.render(&rows, &json!({})).unwrap(),
            "{\"ID\":\"a\",\"Names\":\"x<y\"}\n{\"ID\":\"b\",\"Names\":\"z\"}\n"
        );
        let f = Formatter::new(Some("{{.Nope}}"), "").unwrap();
        assert_eq!(
            f.render(&rows, &json!({})).unwrap_err().to_string(),
            r#"template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
    }

    #[test]
    fn tabwriter_matches_go() {
        // Go: tabwriter.NewWriter(w, 10, 1, 3, ' ', 0) over these lines.
        let mut tw = TabWriter::docker();
        tw.write("a\tb\tc\naaaaaaaaaaaaa\tb\n\nx\ty\n");
        assert_eq!(
            tw.flush(),
            "a               b         c\naaaaaaaaaaaaa   b\n\nx         y\n"
        );
        // Wide characters count two columns.
        let mut tw = TabWriter::docker();
        tw.write("名前\tx\nab\ty\n");
        assert_eq!(tw.flush(), "名前      x\nab        y\n");
        // Text without a final newline is kept.
        let mut tw = TabWriter::new(0, 8, 1, b'.');
        tw.write("a\tbb\tc\naaa\tb\td");
        assert_eq!(tw.flush(), "a...bb.c\naaa.b..d");
    }

    #[test]
    fn float_formatting_matches_strconv() {
        for (f, fmt, prec, want) in [
            (1234567.0, 'g', None, "1.234567e+06"),
            (100000.0, 'g', None, "100000"),
            (1e6, 'g', None, "1e+06"),
            (0.0001, 'g', None, "0.0001"),
            (0.00001, 'g', None, "1e-05"),
            (0.0, 'g', None, "0"),
            (-2.5, 'g', None, "-2.5"),
            (999.9, 'g', Some(3), "1e+03"),
            (1.5, 'g', Some(3), "1.5"),
            (100.0, 'g', Some(3), "100"),
            (150.0, 'g', Some(2), "1.5e+02"),
            (1.0, 'g', Some(4), "1"),
            (12.34, 'g', Some(4), "12.34"),
            (2.5, 'f', Some(0), "2"),
            (1234.5, 'e', Some(2), "1.23e+03"),
            (0.0, 'e', None, "0e+00"),
            (f64::INFINITY, 'g', None, "+Inf"),
        ] {
            assert_eq!(go_format_float(f, fmt, prec), want, "{f} {fmt} {prec:?}");
        }
    }

    #[test]
    fn quoting_and_unquoting() {
        assert_eq!(go_quote("a\"b\\\n\u{1}é\u{a0}"), r#""a\"b\\\n\x01é\u00a0""#);
        assert_eq!(go_unquote(r#""a\tb\u00e9\x41\101""#).unwrap(), "a\tbéAA");
        assert_eq!(go_unquote("`raw\\n`").unwrap(), "raw\\n");
        assert!(go_unquote(r#""\q""#).is_none());
    }

    #[test]
    fn spaces_else_chains_and_scopes() {
        let d = json!({"ID": "x", "N": 2});
        assert_eq!(
            run(
                "{{ .ID }}|{{ if eq .N 1 }}one{{ else if eq .N 2 }}two{{ else }}many{{ end }}",
                &d
            ),
            "x|two"
        );
        assert_eq!(run("{{with $v := .ID}}{{$v}}{{end}}", &d), "x");
        // A variable declared inside a block is gone after it.
        assert_eq!(
            parse_err("{{if .N}}{{$y := 1}}{{end}}{{$y}}"),
            r#"template: :1: undefined variable "$y""#
        );
    }

    #[test]
    fn depth_is_bounded() {
        // A long chain of nested parentheses is refused at parse or runs; never overflows.
        let t = format!(
            "{}.A{}",
            "{{".to_string() + &"(".repeat(50),
            ")".repeat(50) + "}}"
        );
        assert_eq!(run(&t, &json!({"A": "x"})), "x");
    }
}

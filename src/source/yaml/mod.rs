//! YAML into a [`Node`] tree, typed as the Supervisor's PyYAML `SafeLoader` types it.
//!
//! The events come from granit-parser, the pure-Rust, span-carrying YAML parser that
//! serde-saphyr is built on and re-exports (`serde_saphyr::granit_parser`). The tree is built
//! here, straight from those events, rather than through serde-saphyr's `Deserialize` layer:
//! that layer cost four times the parse itself for a position-carrying generic tree, and its
//! scalar typing is not PyYAML's (see [`super::resolve`]). What serde-saphyr's budgets guard
//! against is guarded here, on the same events:
//! - nesting deeper than [`MAX_DEPTH`], also through an alias of a deep anchor;
//! - more than [`MAX_NODES`] nodes or [`MAX_CONFIG_BYTES`] of scalar text, counting every node
//!   and byte an alias copies (a billion-laughs file stops after [`MAX_NODES`] nodes);
//! - more than one document;
//! - recursive aliases, unhashable keys and tags PyYAML's `SafeLoader` would not construct.

mod prescan;

use serde_saphyr::granit_parser::{Event, Marker, Options, Parser, ScalarStyle, ScanError, Tag};

use super::resolve::{self, Plain};
use super::{MAX_CONFIG_BYTES, MAX_DEPTH, Node, Pos, SourceError, Value};
use prescan::indentation_problem;

/// The most nodes a config may hold, alias copies included. The largest real config has about
/// 600; a billion-laughs document reaches this in a few milliseconds.
pub const MAX_NODES: usize = 100_000;

const YAML_TAGS: &str = "tag:yaml.org,2002:";

pub fn parse(text: &str) -> Result<Node, SourceError> {
    if let Some((pos, why)) = indentation_problem(text) {
        return Err(syntax(pos, why));
    }
    let mut options = Options::default();
    options.emit_comments = false;
    // As libyaml: a block scalar at the very end of a file without a final line break does not
    // gain one.
    options.block_scalar_eof_without_line_feed = true;
    // One level of headroom so the builder, not the parser, reports the depth.
    options.block_nesting_limit = MAX_DEPTH + 1;
    options.flow_nesting_limit = MAX_DEPTH + 1;
    // Anchor names, to refuse one defined twice, as PyYAML's composer does.
    options.emit_anchor_events = true;
    let mut builder = Builder::default();
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(scan_error)?;
        let pos = pos(&span.start);
        if let Event::Scalar(_, ScalarStyle::Plain, ..) = &event
            && span.start.index() == span.end.index()
            && matches!(builder.slot(), Slot::Key)
            && span
                .start
                .byte_offset()
                .is_some_and(|at| implicit_empty_key(text, at))
        {
            // YAML 1.2 reads `: v` as a null key; PyYAML (YAML 1.1) rejects it, and so does
            // the Supervisor.
            return Err(syntax(pos, "a mapping key is missing before ':'"));
        }
        builder.event(event, pos).map_err(|why| syntax(pos, why))?;
    }
    builder.root.ok_or(SourceError::Empty)
}

/// The parser reports a missing key as an empty scalar at the `:`. It was written as an
/// explicit key when the `?` indicator is the last thing before that `:` (a comment between the
/// two makes this say no, which refuses a document PyYAML would read: the safe side).
fn implicit_empty_key(text: &str, colon: usize) -> bool {
    let bytes = text.as_bytes();
    if bytes.get(colon) != Some(&b':') {
        return false;
    }
    let before = bytes[..colon]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace());
    before != Some(&b'?')
}

fn pos(marker: &Marker) -> Pos {
    Pos {
        line: marker.line() as u32,
        column: marker.col() as u32 + 1,
    }
}

/// A syntax error: the document is not YAML the Supervisor can read.
fn syntax(pos: Pos, why: impl std::fmt::Display) -> SourceError {
    SourceError::Syntax {
        message: format!("invalid YAML: {why}"),
        pos,
    }
}

fn scan_error(err: ScanError) -> SourceError {
    syntax(pos(err.marker()), err.kind())
}

/// A finished node with what an alias of it would copy.
struct Built {
    node: Node,
    /// Levels of nesting, 1 for a scalar.
    height: usize,
    nodes: usize,
    bytes: usize,
}

enum Collection {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        /// A key waiting for its value; `None` inside means a merge key (`<<`).
        key: Option<Option<Node>>,
        /// The values of merge keys, in order.
        merges: Vec<Node>,
    },
}

struct Frame {
    collection: Collection,
    pos: Pos,
    anchor: usize,
    height: usize,
    nodes_before: usize,
    bytes_before: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Finished anchored nodes by anchor id (ids are small and dense).
    anchors: Vec<Option<Built>>,
    nodes: usize,
    bytes: usize,
    documents: usize,
    /// Every anchor name defined so far.
    anchor_names: Vec<String>,
    root: Option<Node>,
}

/// Where a finished node is going: the slot decides what a merge or `=` scalar means.
enum Slot {
    Key,
    Other,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), String> {
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err("a config file holds one YAML document; found a second".into());
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, text.len())?;
                let slot = self.slot();
                let Some(value) = scalar(&text, style, tag.as_deref(), &slot)? else {
                    self.merge_key();
                    return Ok(());
                };
                let node = Node::new(value, pos);
                if anchor != 0 {
                    self.remember(anchor, &node, 1, 1, text.len());
                }
                self.finish(node, 1)
            }
            Event::SequenceStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "seq")?;
                self.open(Collection::Seq(Vec::new()), pos, anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "map")?;
                let map = Collection::Map {
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                };
                self.open(map, pos, anchor)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => self.alias(id, pos),
            Event::Anchor(_, name) => {
                if self.anchor_names.iter().any(|n| *n == name) {
                    return Err(format!(
                        "anchor '&{name}' is defined twice (PyYAML refuses this)"
                    ));
                }
                self.anchor_names.push(name.into_owned());
                Ok(())
            }
            // Not requested from the parser (comment events, unresolved aliases).
            _ => Ok(()),
        }
    }

    fn count(&mut self, nodes: usize, bytes: usize) -> Result<(), String> {
        self.nodes += nodes;
        self.bytes += bytes;
        if self.nodes > MAX_NODES {
            return Err(format!(
                "more than {MAX_NODES} values (aliases included); a config is far smaller"
            ));
        }
        if self.bytes > MAX_CONFIG_BYTES {
            return Err(format!(
                "more than {MAX_CONFIG_BYTES} bytes of text (aliases included)"
            ));
        }
        Ok(())
    }

    fn slot(&self) -> Slot {
        match self.stack.last() {
            Some(Frame {
                collection: Collection::Map { key: None, .. },
                ..
            }) => Slot::Key,
            _ => Slot::Other,
        }
    }

    fn open(&mut self, collection: Collection, pos: Pos, anchor: usize) -> Result<(), String> {
        self.count(1, 0)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        if anchor != 0 {
            // Reserve the id so an alias inside the collection is seen as recursive.
            self.reserve(anchor);
        }
        self.stack.push(Frame {
            collection,
            pos,
            anchor,
            height: 0,
            nodes_before: self.nodes - 1,
            bytes_before: self.bytes,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        let frame = self.stack.pop().ok_or("unbalanced collection end")?;
        let value = match frame.collection {
            Collection::Seq(items) => Value::Seq(items),
            Collection::Map {
                entries, merges, ..
            } => Value::Map(flatten_merges(entries, merges)?),
        };
        let node = Node::new(value, frame.pos);
        let height = frame.height + 1;
        if frame.anchor != 0 {
            let nodes = self.nodes - frame.nodes_before;
            let bytes = self.bytes - frame.bytes_before;
            self.remember(frame.anchor, &node, height, nodes, bytes);
        }
        self.finish(node, height)
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), String> {
        let Some(Some(anchor)) = self.anchors.get(id) else {
            return Err("an alias refers to its own anchor (a recursive structure)".into());
        };
        let (height, nodes, bytes) = (anchor.height, anchor.nodes, anchor.bytes);
        if self.stack.len() + height > MAX_DEPTH {
            return Err(format!(
                "nested deeper than {MAX_DEPTH} levels through an alias"
            ));
        }
        let mut node = anchor.node.clone();
        self.count(nodes, bytes)?;
        // A merge key or `=` cannot be anchored, so the copy is an ordinary value; the alias
        // itself is where it was written.
        node.pos = pos;
        self.finish(node, height)
    }

    fn reserve(&mut self, id: usize) {
        if self.anchors.len() <= id {
            self.anchors.resize_with(id + 1, || None);
        }
        self.anchors[id] = None;
    }

    fn remember(&mut self, id: usize, node: &Node, height: usize, nodes: usize, bytes: usize) {
        self.reserve(id);
        self.anchors[id] = Some(Built {
            node: node.clone(),
            height,
            nodes,
            bytes,
        });
    }

    /// A `<<` key in the mapping being built: the value that follows is merged into it.
    fn merge_key(&mut self) {
        if let Some(Frame {
            collection: Collection::Map { key, .. },
            ..
        }) = self.stack.last_mut()
        {
            *key = Some(None);
        }
    }

    /// Put a finished node where it belongs: the enclosing collection or the document root.
    fn finish(&mut self, node: Node, height: usize) -> Result<(), String> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.height = frame.height.max(height);
        match &mut frame.collection {
            Collection::Seq(items) => items.push(node),
            Collection::Map {
                entries,
                key,
                merges,
            } => match key.take() {
                None => {
                    if matches!(node.value, Value::Seq(_) | Value::Map(_)) {
                        return Err("a mapping key must be a scalar, not a list or mapping".into());
                    }
                    *key = Some(Some(node));
                }
                Some(None) => merges.push(node),
                Some(Some(k)) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

/// The value of a scalar; `None` for a merge key (`<<` as a mapping key).
fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    slot: &Slot,
) -> Result<Option<Value>, String> {
    if let Some(tag) = tag {
        if is_non_specific(tag) {
            // PyYAML resolves a value under the non-specific tag `!` as if it were plain,
            // even when quoted (`! "12"` is the integer 12), except a missing one (`v: !`),
            // which is the empty string.
            if text.is_empty() && style == ScalarStyle::Plain {
                return Ok(Some(Value::Str(String::new())));
            }
            return plain(text, slot);
        }
        return match tag.suffix_in_namespace(YAML_TAGS) {
            Some(name) => resolve::tagged(&name, text).map(Some),
            None => Err(format!("unknown YAML tag '{}'", tag.original())),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Some(Value::Str(text.to_owned())));
    }
    plain(text, slot)
}

fn plain(text: &str, slot: &Slot) -> Result<Option<Value>, String> {
    match resolve::plain(text)? {
        Plain::Value(value) => Ok(Some(value)),
        Plain::Merge => match slot {
            Slot::Key => Ok(None),
            Slot::Other => Err("'<<' (a merge key) can only be a mapping key".into()),
        },
        Plain::ValueKey => match slot {
            Slot::Key => Ok(Some(Value::Str(text.to_owned()))),
            Slot::Other => Err("a plain '=' cannot be a value; quote it".into()),
        },
    }
}

/// PyYAML's `flatten_mapping`: the entries of merged mappings go first (the first of a list of
/// mappings winning over later ones), so the mapping's own keys, which come later, win.
fn flatten_merges(
    entries: Vec<(Node, Node)>,
    merges: Vec<Node>,
) -> Result<Vec<(Node, Node)>, String> {
    if merges.is_empty() {
        return Ok(entries);
    }
    let not_mapping = "a merge key ('<<') takes a mapping or a list of mappings";
    let mut merged = Vec::new();
    for value in merges {
        match value.value {
            Value::Map(inner) => merged.extend(inner),
            Value::Seq(items) => {
                let mut maps = Vec::with_capacity(items.len());
                for item in items {
                    match item.value {
                        Value::Map(inner) => maps.push(inner),
                        _ => return Err(not_mapping.into()),
                    }
                }
                for inner in maps.into_iter().rev() {
                    merged.extend(inner);
                }
            }
            _ => return Err(not_mapping.into()),
        }
    }
    merged.extend(entries);
    Ok(merged)
}

/// The non-specific tag `!` (the parser gives it an empty handle).
fn is_non_specific(tag: &Tag) -> bool {
    matches!(tag.parts(), ("", "!") | ("!", ""))
}

fn check_collection_tag(tag: Option<&Tag>, want: &str) -> Result<(), String> {
    let Some(tag) = tag else { return Ok(()) };
    if is_non_specific(tag) {
        return Ok(());
    }
    match tag.suffix_in_namespace(YAML_TAGS) {
        Some(name) if name == want => Ok(()),
        Some(name) => Err(format!("the YAML tag !!{name} is not supported here")),
        None => Err(format!("unknown YAML tag '{}'", tag.original())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_types() {
        let node = parse("name: x\nversion: 1.10\nflag: yes\nq: 'yes'\nlist:\n  - 1\n").unwrap();
        let version = node.get("version").unwrap();
        assert_eq!(version.value, Value::Float(1.1));
        assert_eq!(
            version.pos,
            Pos {
                line: 2,
                column: 10
            }
        );
        assert_eq!(node.get("flag").unwrap().value, Value::Bool(true));
        assert_eq!(node.get("q").unwrap().value, Value::Str("yes".into()));
        let list = node.get("list").unwrap().as_seq().unwrap();
        assert_eq!(list[0].pos.line, 6);
    }

    #[test]
    fn duplicate_keys_are_kept_and_last_wins() {
        let node = parse("a: 1\na: 2\n").unwrap();
        assert_eq!(node.as_map().unwrap().len(), 2);
        assert_eq!(node.get("a").unwrap().value, Value::Int(2));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos().is_some_and(|p| p.line >= 1), "{err:?}");
    }

    #[test]
    fn merge_keys_as_pyyaml_flattens_them() {
        let text = "base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\n\
                    one: {<<: *b, x: 9}\nlist: {<<: [*b, *o]}\n";
        let node = parse(text).unwrap();
        let one = node.get("one").unwrap();
        assert_eq!(one.get("x").unwrap().value, Value::Int(9));
        assert_eq!(one.get("y").unwrap().value, Value::Int(2));
        let list = node.get("list").unwrap();
        // The first mapping of the list wins.
        assert_eq!(list.get("y").unwrap().value, Value::Int(2));
        assert_eq!(list.get("z").unwrap().value, Value::Int(4));
        assert!(parse("a: {<<: 1}\n").is_err());
        assert!(parse("a: <<\n").is_err());
        assert!(parse("a: [<<]\n").is_err());
    }

    #[test]
    fn aliases_copy_and_recursion_fails() {
        let node = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(node.get("b").unwrap().as_seq().unwrap().len(), 2);
        assert_eq!(node.get("b").unwrap().pos.line, 2);
        assert!(parse("a: &x [1, *x]\n").is_err());
        let err = parse("a: &x 1\nb: &x 2\n").unwrap_err().to_string();
        assert!(err.contains("defined twice"), "{err}");
    }

    #[test]
    fn limits() {
        assert!(
            parse(&format!(
                "{}1{}",
                "[".repeat(MAX_DEPTH),
                "]".repeat(MAX_DEPTH)
            ))
            .is_ok()
        );
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&deep).is_err());
        // Within the limit where it was written, over it where it was copied.
        let half = MAX_DEPTH / 2 + 1;
        let text = format!(
            "a: &d {}1{}\nb: {}*d{}\n",
            "[".repeat(half),
            "]".repeat(half),
            "[".repeat(half),
            "]".repeat(half)
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("through an alias"), "{err}");
        assert!(parse("---\na: 1\n---\nb: 2\n").is_err());
        assert!(parse("[1]: x\n").is_err());
    }

    #[test]
    fn tags() {
        let node = parse("a: !!str 5\nb: !!int '0x10'\nc: ! '12'\n").unwrap();
        assert_eq!(node.get("a").unwrap().value, Value::Str("5".into()));
        assert_eq!(node.get("b").unwrap().value, Value::Int(16));
        assert_eq!(node.get("c").unwrap().value, Value::Int(12));
        for bad in [
            "a: !custom 1\n",
            "a: !!binary AAAA\n",
            "a: !!set {x}\n",
            "a: !!int x\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("=: 1\n").unwrap().get("=").unwrap().value,
            Value::Int(1)
        );
        assert!(parse("a: =\n").is_err());
    }
}

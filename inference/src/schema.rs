//! A client's JSON schema, checked in Rust before llama.cpp turns it into a
//! grammar, and the grammar checked before llama.cpp parses it.
//!
//! llama.cpp trusts its grammars. A repetition `x{2,1}` (from a schema with
//! `minLength` 2 and `maxLength` 1, or a `pattern` with `a{3,1}`) makes its
//! grammar parser allocate without end (24 GB before the host's OOM killer
//! stopped it, measured); a schema that admits no JSON text at all
//! (`minimum` 5 with `maximum` 3) makes its sampler abort the process when
//! the first token comes. [`check`] refuses such schemas with the reason
//! and where in the schema it is; [`check_gbnf`] refuses any grammar with
//! an inverted or oversized repetition, whatever produced it. The sampler
//! itself never lets llama.cpp accept a token its grammar forbids
//! ([`crate::engine`]), so a schema that slips through ends its request
//! with an error, not the process.

use serde_json::Value;

/// The deepest nesting of subschemas.
pub const MAX_DEPTH: usize = 32;
/// The most subschemas in one schema.
pub const MAX_NODES: usize = 5000;
/// The largest count in a repetition (`maxLength`, `maxItems`, `{m,n}`).
pub const MAX_COUNT: u64 = 100_000;
/// The most values in an `enum`.
pub const MAX_ENUM: usize = 1000;
/// The longest `pattern`.
pub const MAX_PATTERN: usize = 1000;
/// Numeric bounds llama.cpp can turn into a grammar exactly.
const MAX_BOUND: f64 = 1e15;

const TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "object", "array", "null",
];

struct Walk<'a> {
    root: &'a Value,
    nodes: usize,
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "the schema".into()
    } else {
        format!("schema{path}")
    }
}

/// Checks `schema` (see the module).
pub fn check(schema: &Value) -> Result<(), String> {
    if !schema.is_object() {
        return Err("the schema must be a JSON object".into());
    }
    let mut w = Walk {
        root: schema,
        nodes: 0,
    };
    w.schema(schema, "", 0)
}

/// The types a schema's `type` names (all of them when it names none).
fn types_of(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(v)) => v.iter().filter_map(Value::as_str).collect(),
        _ => TYPES.to_vec(),
    }
}

/// Whether a JSON value is of schema type `t`.
fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|x| x.fract() == 0.0),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => false,
    }
}

impl Walk<'_> {
    fn schema(&mut self, s: &Value, path: &str, depth: usize) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("the schema has more than {MAX_NODES} subschemas"));
        }
        if depth > MAX_DEPTH {
            return Err(format!("{} nests deeper than {MAX_DEPTH} levels", at(path)));
        }
        let obj = match s {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => {
                return Err(format!("{} is `false`, which admits no value", at(path)));
            }
            Value::Object(o) => o,
            _ => return Err(format!("{} must be an object or a boolean", at(path))),
        };
        if let Some(t) = obj.get("type") {
            let names: Vec<&Value> = match t {
                Value::Array(v) => v.iter().collect(),
                one => vec![one],
            };
            if names.is_empty() {
                return Err(format!(
                    "{}.type is an empty list: no value has no type",
                    at(path)
                ));
            }
            for n in names {
                if !n.as_str().is_some_and(|n| TYPES.contains(&n)) {
                    return Err(format!(
                        "{}.type: {n} is not a JSON schema type ({})",
                        at(path),
                        TYPES.join(", ")
                    ));
                }
            }
        }
        let types = types_of(s);
        self.counts(obj, path)?;
        self.numbers(obj, path, &types)?;
        if let Some(p) = obj.get("pattern") {
            let p = p
                .as_str()
                .ok_or_else(|| format!("{}.pattern must be a string", at(path)))?;
            pattern(p).map_err(|e| format!("{}.pattern: {e}", at(path)))?;
        }
        if let Some(e) = obj.get("enum") {
            let v = e
                .as_array()
                .ok_or_else(|| format!("{}.enum must be a list", at(path)))?;
            if v.is_empty() {
                return Err(format!("{}.enum is empty: it admits no value", at(path)));
            }
            if v.len() > MAX_ENUM {
                return Err(format!("{}.enum has more than {MAX_ENUM} values", at(path)));
            }
            if !v.iter().any(|x| types.iter().any(|t| is_type(x, t))) {
                return Err(format!(
                    "{}.enum holds no value of the schema's type ({})",
                    at(path),
                    types.join(", ")
                ));
            }
        }
        if let Some(c) = obj.get("const")
            && !types.iter().any(|t| is_type(c, t))
        {
            return Err(format!(
                "{}.const is not of the schema's type ({})",
                at(path),
                types.join(", ")
            ));
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(v) = obj.get(key) {
                let list = v
                    .as_array()
                    .ok_or_else(|| format!("{}.{key} must be a list of schemas", at(path)))?;
                if list.is_empty() {
                    return Err(format!("{}.{key} is empty", at(path)));
                }
                for (i, sub) in list.iter().enumerate() {
                    self.schema(sub, &format!("{path}.{key}[{i}]"), depth + 1)?;
                }
            }
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            let mut common: Vec<&str> = types.clone();
            for sub in all {
                let t = types_of(sub);
                common.retain(|x| t.contains(x) || (*x == "integer" && t.contains(&"number")));
            }
            if common.is_empty() {
                return Err(format!(
                    "{}.allOf: no value has every type its schemas ask for",
                    at(path)
                ));
            }
        }
        if let Some(props) = obj.get("properties") {
            let props = props
                .as_object()
                .ok_or_else(|| format!("{}.properties must be an object", at(path)))?;
            for (k, sub) in props {
                self.schema(sub, &format!("{path}.properties.{k}"), depth + 1)?;
            }
        }
        if let Some(req) = obj.get("required") {
            let req = req
                .as_array()
                .ok_or_else(|| format!("{}.required must be a list of names", at(path)))?;
            let closed = obj.get("additionalProperties") == Some(&Value::Bool(false));
            for r in req {
                let name = r
                    .as_str()
                    .ok_or_else(|| format!("{}.required must be a list of names", at(path)))?;
                let declared = obj.get("properties").and_then(|p| p.get(name)).is_some();
                if closed && !declared {
                    return Err(format!(
                        "{} requires {name:?} but allows no properties beyond its own, and {name:?} is not one",
                        at(path)
                    ));
                }
            }
        }
        if matches!(obj.get("not"), Some(Value::Bool(true)))
            || obj
                .get("not")
                .is_some_and(|n| n.as_object().is_some_and(|o| o.is_empty()))
        {
            return Err(format!("{}.not rules out every value", at(path)));
        }
        for key in ["additionalProperties", "items", "not", "contains"] {
            match obj.get(key) {
                None | Some(Value::Bool(_)) => {}
                Some(Value::Array(list)) if key == "items" => {
                    for (i, sub) in list.iter().enumerate() {
                        self.schema(sub, &format!("{path}.items[{i}]"), depth + 1)?;
                    }
                }
                Some(sub) => self.schema(sub, &format!("{path}.{key}"), depth + 1)?,
            }
        }
        if let Some(v) = obj.get("prefixItems") {
            let list = v
                .as_array()
                .ok_or_else(|| format!("{}.prefixItems must be a list of schemas", at(path)))?;
            for (i, sub) in list.iter().enumerate() {
                self.schema(sub, &format!("{path}.prefixItems[{i}]"), depth + 1)?;
            }
        }
        for key in ["$defs", "definitions"] {
            if let Some(defs) = obj.get(key) {
                let defs = defs
                    .as_object()
                    .ok_or_else(|| format!("{}.{key} must be an object", at(path)))?;
                for (k, sub) in defs {
                    self.schema(sub, &format!("{path}.{key}.{k}"), depth + 1)?;
                }
            }
        }
        if let Some(r) = obj.get("$ref") {
            let r = r
                .as_str()
                .ok_or_else(|| format!("{}.$ref must be a string", at(path)))?;
            self.reference(r, path)?;
        }
        Ok(())
    }

    /// A `$ref` must point inside the schema, at a schema, and a chain of
    /// references must reach something other than a reference.
    fn reference(&self, r: &str, path: &str) -> Result<(), String> {
        let mut seen = vec![r.to_owned()];
        let mut r = r.to_owned();
        loop {
            let Some(pointer) = r.strip_prefix('#').filter(|p| !p.is_empty()) else {
                return Err(format!(
                    "{}.$ref {r:?}: only references inside the schema (#/$defs/NAME) are supported, and not to the whole schema",
                    at(path)
                ));
            };
            let target = self
                .root
                .pointer(pointer)
                .ok_or_else(|| format!("{}.$ref {r:?} points at nothing", at(path)))?;
            match target.get("$ref").and_then(Value::as_str) {
                None => return Ok(()),
                Some(next) if seen.iter().any(|s| s == next) => {
                    return Err(format!(
                        "{}.$ref {r:?}: the references go round without reaching a schema",
                        at(path)
                    ));
                }
                Some(next) => {
                    seen.push(next.to_owned());
                    r = next.to_owned();
                }
            }
        }
    }

    fn counts(&self, obj: &serde_json::Map<String, Value>, path: &str) -> Result<(), String> {
        for (lo, hi) in [
            ("minLength", "maxLength"),
            ("minItems", "maxItems"),
            ("minProperties", "maxProperties"),
        ] {
            let get = |k: &str| -> Result<Option<u64>, String> {
                match obj.get(k) {
                    None => Ok(None),
                    Some(v) => match v.as_u64() {
                        Some(n) if n <= MAX_COUNT => Ok(Some(n)),
                        Some(_) => Err(format!("{}.{k} is above {MAX_COUNT}", at(path))),
                        None => Err(format!(
                            "{}.{k} must be a whole number of at least 0",
                            at(path)
                        )),
                    },
                }
            };
            if let (Some(a), Some(b)) = (get(lo)?, get(hi)?)
                && a > b
            {
                return Err(format!(
                    "{}: {lo} {a} is above {hi} {b}, so no value fits",
                    at(path)
                ));
            }
        }
        if let (Some(Value::Array(prefix)), Some(Value::Bool(false)), Some(min)) = (
            obj.get("prefixItems"),
            obj.get("items"),
            obj.get("minItems").and_then(Value::as_u64),
        ) && min > prefix.len() as u64
        {
            return Err(format!(
                "{}: minItems {min} is more than its {} prefixItems allow",
                at(path),
                prefix.len()
            ));
        }
        Ok(())
    }

    fn numbers(
        &self,
        obj: &serde_json::Map<String, Value>,
        path: &str,
        types: &[&str],
    ) -> Result<(), String> {
        let num = |k: &str| -> Result<Option<f64>, String> {
            match obj.get(k) {
                None => Ok(None),
                Some(v) => match v.as_f64() {
                    Some(x) if x.abs() <= MAX_BOUND => Ok(Some(x)),
                    Some(_) => Err(format!("{}.{k} is beyond ±{MAX_BOUND:e}", at(path))),
                    None => Err(format!("{}.{k} must be a number", at(path))),
                },
            }
        };
        let (min, max) = (num("minimum")?, num("maximum")?);
        let (xmin, xmax) = (num("exclusiveMinimum")?, num("exclusiveMaximum")?);
        let lo = match (min, xmin) {
            (Some(a), Some(b)) => Some((a.max(b), b >= a)),
            (Some(a), None) => Some((a, false)),
            (None, Some(b)) => Some((b, true)),
            (None, None) => None,
        };
        let hi = match (max, xmax) {
            (Some(a), Some(b)) => Some((a.min(b), b <= a)),
            (Some(a), None) => Some((a, false)),
            (None, Some(b)) => Some((b, true)),
            (None, None) => None,
        };
        let (Some((lo, lo_x)), Some((hi, hi_x))) = (lo, hi) else {
            return Ok(());
        };
        let empty = if types == ["integer"] {
            let first = if lo_x { lo.floor() + 1.0 } else { lo.ceil() };
            let last = if hi_x { hi.ceil() - 1.0 } else { hi.floor() };
            first > last
        } else {
            lo > hi || (lo == hi && (lo_x || hi_x))
        };
        if empty {
            return Err(format!(
                "{}: no number lies between its lower bound {lo} and upper bound {hi}",
                at(path)
            ));
        }
        Ok(())
    }
}

/// Checks a `pattern`'s length, repetitions and character ranges.
fn pattern(p: &str) -> Result<(), String> {
    if p.len() > MAX_PATTERN {
        return Err(format!("longer than {MAX_PATTERN} bytes"));
    }
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '-' if in_class && i > 0 && c[i - 1] != '[' && i + 1 < c.len() && c[i + 1] != ']' => {
                let (a, b) = (c[i - 1], c[i + 1]);
                if a > b && c.get(i.wrapping_sub(2)) != Some(&'\\') && b != '\\' {
                    return Err(format!("the range {a}-{b} is empty"));
                }
            }
            '{' if !in_class => {
                if let Some((m, n, len)) = braces(&c[i..]) {
                    repetition(m, n)?;
                    i += len - 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// `{m}`, `{m,}` or `{m,n}` at the start of `c`: (m, n, length in chars).
fn braces(c: &[char]) -> Option<(u64, Option<u64>, usize)> {
    let close = c.iter().position(|&x| x == '}')?;
    let inner: String = c[1..close].iter().collect();
    let (m, n) = match inner.split_once(',') {
        None => {
            let m = inner.trim().parse().ok()?;
            (m, Some(m))
        }
        Some((a, b)) => {
            let m = a.trim().parse().ok()?;
            let n = if b.trim().is_empty() {
                None
            } else {
                Some(b.trim().parse().ok()?)
            };
            (m, n)
        }
    };
    Some((m, n, close + 1))
}

fn repetition(m: u64, n: Option<u64>) -> Result<(), String> {
    if m > MAX_COUNT || n.is_some_and(|n| n > MAX_COUNT) {
        return Err(format!("a repetition count is above {MAX_COUNT}"));
    }
    if let Some(n) = n
        && m > n
    {
        return Err(format!(
            "the repetition {{{m},{n}}} asks for more than it allows"
        ));
    }
    Ok(())
}

/// Checks a GBNF grammar's repetitions (`{m,n}` outside literals and
/// character classes) before llama.cpp parses it.
pub fn check_gbnf(g: &str) -> Result<(), String> {
    let c: Vec<char> = g.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '"' | '[' => {
                let end = if c[i] == '"' { '"' } else { ']' };
                i += 1;
                while i < c.len() && c[i] != end {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '#' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '{' => {
                if let Some((m, n, len)) = braces(&c[i..]) {
                    repetition(m, n).map_err(|e| format!("the grammar is refused: {e}"))?;
                    i += len - 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_that_admit_nothing_or_blow_up_are_refused_with_the_place() {
        for (s, says) in [
            (
                json!({"type": "string", "minLength": 2, "maxLength": 1}),
                "minLength 2 is above maxLength 1",
            ),
            (
                json!({"type": "array", "minItems": 3, "maxItems": 1}),
                "minItems 3",
            ),
            (
                json!({"type": "integer", "minimum": 5, "maximum": 3}),
                "no number",
            ),
            (
                json!({"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 2}),
                "no number",
            ),
            (
                json!({"type": "number", "minimum": 1, "exclusiveMaximum": 1}),
                "no number",
            ),
            (json!({"enum": []}), "enum is empty"),
            (
                json!({"type": "string", "enum": [1, 2]}),
                "no value of the schema's type",
            ),
            (json!({"type": "string", "const": 3}), "const"),
            (json!({"anyOf": []}), "anyOf is empty"),
            (json!({"type": []}), "empty list"),
            (json!({"type": "text"}), "not a JSON schema type"),
            (
                json!({"allOf": [{"type": "string"}, {"type": "number"}]}),
                "every type",
            ),
            (
                json!({"properties": {"a": false}}),
                "schema.properties.a is `false`",
            ),
            (json!({"$ref": "#"}), "not to the whole schema"),
            (json!({"$ref": "#/$defs/x"}), "points at nothing"),
            (
                json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}}),
                "go round",
            ),
            (
                json!({"$ref": "https://example.com/s.json"}),
                "only references inside",
            ),
            (
                json!({"type": "object", "required": ["x"], "additionalProperties": false}),
                "requires \"x\"",
            ),
            (json!({"type": "string", "pattern": "^a{3,1}$"}), "{3,1}"),
            (json!({"type": "string", "pattern": "^a{100001}$"}), "above"),
            (json!({"type": "string", "pattern": "^[z-a]$"}), "range z-a"),
            (json!({"type": "string", "maxLength": 1_000_000}), "above"),
            (json!({"type": "string", "minLength": -1}), "at least 0"),
            (json!({"type": "integer", "maximum": 1e300}), "beyond"),
            (
                json!({"prefixItems": [{}], "items": false, "minItems": 2}),
                "prefixItems allow",
            ),
        ] {
            let e = check(&s).expect_err(&s.to_string());
            assert!(e.contains(says), "{s}: {e}");
        }
        let mut deep = json!({"type": "string"});
        for _ in 0..40 {
            deep = json!({"type": "array", "items": deep});
        }
        assert!(check(&deep).unwrap_err().contains("deeper"));
        assert!(check(&json!(true)).is_err());
    }

    #[test]
    fn ordinary_schemas_pass() {
        for s in [
            json!({}),
            json!({"type": "object"}),
            json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 40},
                   "age": {"type": "integer", "minimum": 0, "maximum": 150},
                   "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5}},
                   "required": ["name", "age"], "additionalProperties": false}),
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
            json!({"type": ["string", "null"], "enum": ["a", null]}),
            json!({"$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
                   "$ref": "#/$defs/node"}),
            json!({"type": "string", "pattern": "^[a-z]{2,8}-\\d{3}$"}),
            json!({"type": "string", "pattern": "^[\\]-a]$"}),
            json!({"type": "integer", "minimum": 3, "maximum": 3}),
            json!({"allOf": [{"type": "object"}, {"properties": {"a": {"type": "integer"}}}]}),
            json!({"type": "number", "const": 2.5}),
        ] {
            check(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    #[test]
    fn grammars_with_inverted_or_huge_repetitions_are_refused() {
        assert!(
            check_gbnf("root ::= [a-z]{2,1}")
                .unwrap_err()
                .contains("{2,1}")
        );
        assert!(check_gbnf("root ::= \"a\"{200000}").is_err());
        assert!(check_gbnf("root ::= x{1,5}\nx ::= [0-9]{0,3}").is_ok());
        // Inside literals, classes and comments, braces are text.
        assert!(check_gbnf("root ::= \"{5,3}\" [{}] # {9,1}\n").is_ok());
        assert!(check_gbnf("root ::= \"\\\"{5,3}\"").is_ok());
    }
}

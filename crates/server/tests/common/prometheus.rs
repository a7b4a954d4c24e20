//! A strict reader of the Prometheus text format (version 0.0.4) for tests: every line must
//! be a `# HELP`, a `# TYPE` or a sample `name{label="value",...} number`, label values
//! quoted with the format's escapes; anything else fails the test. (`prometheus-parse`
//! skips lines it cannot read, such as a label value with a `}`, so it proves nothing.)

#![allow(dead_code)]

use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    /// Metric name → its `# TYPE`.
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    /// The sum of the samples of `name` whose labels include `labels`; 0 when none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v)))
            .map(|s| s.value)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE: {line}"));
            assert!(is_name(name), "bad metric name: {line}");
            let kinds = ["counter", "gauge", "histogram", "summary", "untyped"];
            assert!(kinds.contains(&kind), "bad type: {line}");
            scrape.types.insert(name.to_owned(), kind.to_owned());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(is_name(rest.split(' ').next().unwrap_or_default()), "bad HELP: {line}");
        } else {
            assert!(!line.starts_with('#'), "an unknown comment: {line}");
            scrape.samples.push(sample(line));
        }
    }
    scrape
}

fn sample(line: &str) -> Sample {
    let end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..end];
    assert!(is_name(name), "bad metric name: {line}");
    let mut labels = BTreeMap::new();
    let mut rest = &line[end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            let start = chars.peek().map(|(i, _)| *i).unwrap_or_else(|| panic!("open: {line}"));
            if inner[start..].starts_with('}') {
                rest = &inner[start + 1..];
                break;
            }
            let eq = inner[start..].find('=').unwrap_or_else(|| panic!("no '=': {line}")) + start;
            let key = &inner[start..eq];
            assert!(is_name(key), "bad label name {key:?}: {line}");
            assert_eq!(inner[eq + 1..].chars().next(), Some('"'), "unquoted value: {line}");
            while chars.next().is_some_and(|(i, _)| i < eq + 1) {}
            let mut value = String::new();
            loop {
                match chars.next().unwrap_or_else(|| panic!("unterminated value: {line}")) {
                    (_, '"') => break,
                    (_, '\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    (_, c) => value.push(c),
                }
            }
            labels.insert(key.to_owned(), value);
            if chars.peek().is_some_and(|(_, c)| *c == ',') {
                chars.next();
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().unwrap_or_else(|| panic!("no value: {line}"));
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
    };
    if let Some(timestamp) = fields.next() {
        timestamp.parse::<i64>().unwrap_or_else(|_| panic!("bad timestamp: {line}"));
    }
    assert!(fields.next().is_none(), "trailing text: {line}");
    Sample { name: name.to_owned(), labels, value }
}

#[test]
fn reads_and_refuses_what_the_format_says() {
    let scrape = parse(
        "# HELP a_total Help text.\n# TYPE a_total counter\n\
         a_total{route=\"/x/{id}\",q=\"a\\\"b\"} 2\nb 1.5\nc{le=\"+Inf\"} 3 1700000000\n",
    );
    assert_eq!(scrape.value("a_total", &[("route", "/x/{id}"), ("q", "a\"b")]), 2.0);
    assert_eq!(scrape.value("b", &[]), 1.5);
    for bad in ["a_total{route=/x} 1", "a b c d", "1a 2", "a{x=\"y\" 1", "a{x=\"y\"} one"] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "accepted {bad:?}");
    }
}

//! URL query-string decoding.

use std::collections::HashMap;

/// Decoded query parameters (last value wins; unknown ones are ignored by handlers, D-0.8).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parse `a=b&c=d`.
    pub fn parse(q: &str) -> Self {
        let mut m = HashMap::new();
        for part in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            m.insert(decode(k), decode(v));
        }
        Query(m)
    }

    /// A parameter's value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|s| s.as_str())
    }

    /// Set a parameter.
    pub fn set(&mut self, k: &str, v: &str) {
        self.0.insert(k.to_string(), v.to_string());
    }

    /// A non-empty parameter's value.
    pub fn non_empty(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|s| !s.is_empty())
    }

    /// A boolean flag (`true` or `1`).
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }

    /// `dryRun=All`.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let q = Query::parse(
            "fieldSelector=spec.nodeName%3Dn1&labelSelector=a+in+(x%2Cy)&watch=1&bad=%zz%",
        );
        assert_eq!(q.get("fieldSelector"), Some("spec.nodeName=n1"));
        assert_eq!(q.get("labelSelector"), Some("a in (x,y)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("bad"), Some("%zz%"));
    }
}

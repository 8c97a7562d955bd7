//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`, D-0.5), as kubectl's typed
//! clients send them (`kubectl create deployment`, `create pdb`, `auth can-i`, `delete`, …).
//!
//! The schema is the upstream one: the `generated.proto` files of k8s.io/api and
//! k8s.io/apimachinery v0.33.13 (comments removed) under `crates/kubesim/proto`, compiled at first
//! use by `protox` and decoded with `prost-reflect`. The decoded message becomes the JSON the real
//! server would store: Kubernetes' own JSON forms for `Time`, `MicroTime`, `IntOrString`,
//! `Quantity`, `RawExtension`, `FieldsV1`, `Duration` and the slice types, and Go's `omitempty`
//! rules for zero scalars (`proto/zero-kept.txt` lists the fields whose zero value is kept: pointer
//! fields and fields without `omitempty`, read from the Go types by `proto/update.sh`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value as PValue,
};
use serde_json::{Map, Value};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// Media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const PROTOS: &[(&str, &str)] = &[
    (
        "k8s.io/api/core/v1/generated.proto",
        include_str!("../../proto/k8s.io/api/core/v1/generated.proto"),
    ),
    (
        "k8s.io/api/apps/v1/generated.proto",
        include_str!("../../proto/k8s.io/api/apps/v1/generated.proto"),
    ),
    (
        "k8s.io/api/policy/v1/generated.proto",
        include_str!("../../proto/k8s.io/api/policy/v1/generated.proto"),
    ),
    (
        "k8s.io/api/authorization/v1/generated.proto",
        include_str!("../../proto/k8s.io/api/authorization/v1/generated.proto"),
    ),
    (
        "k8s.io/api/coordination/v1/generated.proto",
        include_str!("../../proto/k8s.io/api/coordination/v1/generated.proto"),
    ),
    (
        "k8s.io/api/autoscaling/v1/generated.proto",
        include_str!("../../proto/k8s.io/api/autoscaling/v1/generated.proto"),
    ),
    (
        "k8s.io/api/events/v1/generated.proto",
        include_str!("../../proto/k8s.io/api/events/v1/generated.proto"),
    ),
    (
        "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
        include_str!("../../proto/k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto"),
    ),
    (
        "k8s.io/apimachinery/pkg/runtime/generated.proto",
        include_str!("../../proto/k8s.io/apimachinery/pkg/runtime/generated.proto"),
    ),
    (
        "k8s.io/apimachinery/pkg/runtime/schema/generated.proto",
        include_str!("../../proto/k8s.io/apimachinery/pkg/runtime/schema/generated.proto"),
    ),
    (
        "k8s.io/apimachinery/pkg/util/intstr/generated.proto",
        include_str!("../../proto/k8s.io/apimachinery/pkg/util/intstr/generated.proto"),
    ),
    (
        "k8s.io/apimachinery/pkg/api/resource/generated.proto",
        include_str!("../../proto/k8s.io/apimachinery/pkg/api/resource/generated.proto"),
    ),
];

const ZERO_KEPT: &str = include_str!("../../proto/zero-kept.txt");
const INLINE: &str = include_str!("../../proto/inline.txt");

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Serves the embedded `.proto` sources to the compiler.
struct Embedded;

impl protox::file::FileResolver for Embedded {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        path.to_str().map(String::from)
    }

    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        let (_, src) = PROTOS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| protox::Error::file_not_found(name))?;
        protox::file::File::from_source(name, src)
    }
}

struct Schema {
    pool: DescriptorPool,
    zero_kept: HashSet<&'static str>,
    /// Embedded Go structs (`json:",inline"`): the message's fields are the parent's in JSON.
    inline: HashSet<&'static str>,
}

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let mut c = protox::Compiler::with_file_resolver(Embedded);
        c.include_source_info(false);
        for (name, _) in PROTOS {
            c.open_file(name)
                .unwrap_or_else(|e| panic!("embedded {name} does not compile: {e}"));
        }
        Schema {
            pool: c.descriptor_pool(),
            zero_kept: ZERO_KEPT.lines().filter(|l| !l.is_empty()).collect(),
            inline: INLINE.lines().filter(|l| !l.is_empty()).collect(),
        }
    })
}

/// Whether the client lists protobuf first in `Accept` (kubectl's typed clients do).
pub fn wants_protobuf(accept: &str) -> bool {
    is_protobuf(accept.split(',').next().unwrap_or(""))
}

/// Whether a `Content-Type` names Kubernetes protobuf.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.trim_start().starts_with(MEDIA_TYPE)
}

/// The message of a kind: `k8s.io.api.<group>.<version>.<Kind>` (core for the legacy group,
/// the group's first label for `*.k8s.io` groups), else the meta/v1 kind (`DeleteOptions`).
fn message_for(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let pool = &schema().pool;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let pkg = match group {
        "" => "core",
        g => g.strip_suffix(".k8s.io").unwrap_or(g),
    };
    pool.get_message_by_name(&format!("k8s.io.api.{pkg}.{version}.{kind}"))
        .or_else(|| pool.get_message_by_name(&format!("{META}.{kind}")))
}

/// Decode a protobuf body (the `runtime.Unknown` envelope after the magic prefix) into the JSON
/// object the real server would read from it, with its `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or("provided protobuf body does not start with the k8s\\0 prefix")?;
    let unknown = schema()
        .pool
        .get_message_by_name("k8s.io.apimachinery.pkg.runtime.Unknown")
        .ok_or("no runtime.Unknown in the embedded schema")?;
    let env = DynamicMessage::decode(unknown, inner)
        .map_err(|e| format!("malformed protobuf envelope: {e}"))?;
    let text = |m: &DynamicMessage, f: &str| {
        m.get_field_by_name(f)
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    };
    let tm = env
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned());
    let (api_version, kind) = tm
        .as_ref()
        .map(|t| (text(t, "apiVersion"), text(t, "kind")))
        .unwrap_or_default();
    let raw = env
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let desc = message_for(&api_version, &kind).ok_or_else(|| {
        format!(
            "no kind \"{kind}\" is registered for version \"{api_version}\" in the protobuf schema"
        )
    })?;
    let msg = DynamicMessage::decode(desc, raw.as_ref())
        .map_err(|e| format!("malformed protobuf {kind}: {e}"))?;
    let mut v = message_json(&msg);
    if let Value::Object(m) = &mut v {
        if !api_version.is_empty() {
            m.insert("apiVersion".into(), Value::from(api_version));
        }
        if !kind.is_empty() {
            m.insert("kind".into(), Value::from(kind));
        }
    }
    Ok(v)
}

/// Encode a JSON object (`apiVersion` and `kind` set) as the real server's protobuf answer: the
/// magic prefix and a `runtime.Unknown` holding the message. None when the schema has no
/// message for the kind.
pub fn encode(obj: &Value) -> Option<Vec<u8>> {
    use prost::Message as _;
    let api_version = obj["apiVersion"].as_str()?;
    let kind = obj["kind"].as_str()?;
    let desc = message_for(api_version, kind)?;
    let raw = json_message(desc, obj).encode_to_vec();
    let pool = &schema().pool;
    let mut tm =
        DynamicMessage::new(pool.get_message_by_name("k8s.io.apimachinery.pkg.runtime.TypeMeta")?);
    tm.set_field_by_name("apiVersion", PValue::String(api_version.into()));
    tm.set_field_by_name("kind", PValue::String(kind.into()));
    let mut u =
        DynamicMessage::new(pool.get_message_by_name("k8s.io.apimachinery.pkg.runtime.Unknown")?);
    u.set_field_by_name("typeMeta", PValue::Message(tm));
    u.set_field_by_name("raw", PValue::Bytes(raw.into()));
    u.set_field_by_name("contentEncoding", PValue::String(String::new()));
    u.set_field_by_name("contentType", PValue::String(String::new()));
    let mut out = MAGIC.to_vec();
    out.extend(u.encode_to_vec());
    Some(out)
}

fn set(m: &mut DynamicMessage, name: &str, v: PValue) {
    if m.descriptor().get_field_by_name(name).is_some() {
        m.set_field_by_name(name, v);
    }
}

/// A JSON value as a message of `desc`: the reverse of [`message_json`].
fn json_message(desc: MessageDescriptor, v: &Value) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    match desc.full_name() {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
        | "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            if let Some(t) = v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
                set(&mut m, "seconds", PValue::I64(t.as_second()));
                if desc.full_name().ends_with("MicroTime") {
                    set(&mut m, "nanos", PValue::I32(t.subsec_nanosecond()));
                }
            }
            return m;
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            match v {
                Value::String(s) => {
                    set(&mut m, "type", PValue::I64(1));
                    set(&mut m, "strVal", PValue::String(s.clone()));
                }
                other => {
                    set(&mut m, "type", PValue::I64(0));
                    set(
                        &mut m,
                        "intVal",
                        PValue::I32(other.as_i64().unwrap_or(0) as i32),
                    );
                }
            }
            return m;
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            set(&mut m, "string", PValue::String(s));
            return m;
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => {
            set(
                &mut m,
                "raw",
                PValue::Bytes(serde_json::to_vec(v).unwrap_or_default().into()),
            );
            return m;
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            set(
                &mut m,
                "Raw",
                PValue::Bytes(serde_json::to_vec(v).unwrap_or_default().into()),
            );
            return m;
        }
        n if n.ends_with(".ExtraValue") || n == "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs" => {
            if let Some(f) = desc.get_field_by_name("items") {
                m.set_field(&f, json_value(&f.kind(), v, true));
            }
            return m;
        }
        _ => {}
    }
    let Some(obj) = v.as_object() else {
        return m;
    };
    for f in desc.fields() {
        if schema()
            .inline
            .contains(format!("{}.{}", desc.full_name(), f.name()).as_str())
            && let prost_reflect::Kind::Message(d) = f.kind()
        {
            m.set_field(&f, PValue::Message(json_message(d, v)));
        }
    }
    for (k, val) in obj {
        let Some(f) = desc.get_field_by_name(k) else {
            continue;
        };
        if val.is_null() {
            continue;
        }
        let pv = if f.is_map() {
            let entry = match f.kind() {
                prost_reflect::Kind::Message(e) => e,
                _ => continue,
            };
            let vkind = entry.map_entry_value_field().kind();
            let map = val
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(mk, mv)| (MapKey::String(mk.clone()), json_value(&vkind, mv, false)))
                        .collect()
                })
                .unwrap_or_default();
            PValue::Map(map)
        } else {
            json_value(&f.kind(), val, f.is_list())
        };
        m.set_field(&f, pv);
    }
    m
}

fn json_value(kind: &prost_reflect::Kind, v: &Value, list: bool) -> PValue {
    use base64::Engine as _;
    use prost_reflect::Kind as K;
    if list {
        let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
        return PValue::List(items.iter().map(|i| json_value(kind, i, false)).collect());
    }
    match kind {
        K::Bool => PValue::Bool(v.as_bool().unwrap_or(false)),
        K::Int32 | K::Sint32 | K::Sfixed32 => PValue::I32(v.as_i64().unwrap_or(0) as i32),
        K::Int64 | K::Sint64 | K::Sfixed64 => PValue::I64(v.as_i64().unwrap_or(0)),
        K::Uint32 | K::Fixed32 => PValue::U32(v.as_u64().unwrap_or(0) as u32),
        K::Uint64 | K::Fixed64 => PValue::U64(v.as_u64().unwrap_or(0)),
        K::Double => PValue::F64(v.as_f64().unwrap_or(0.0)),
        K::Float => PValue::F32(v.as_f64().unwrap_or(0.0) as f32),
        K::String => PValue::String(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        K::Bytes => PValue::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or(""))
                .unwrap_or_default()
                .into(),
        ),
        K::Enum(_) => PValue::EnumNumber(v.as_i64().unwrap_or(0) as i32),
        K::Message(d) => PValue::Message(json_message(d.clone(), v)),
    }
}

/// Go's zero `time.Time` (year 1) as Unix seconds: it marshals as `null`.
const GO_ZERO_TIME: i64 = -62_135_596_800;

fn int_field(m: &DynamicMessage, name: &str) -> i64 {
    match m.get_field_by_name(name).as_deref() {
        Some(PValue::I64(v)) => *v,
        Some(PValue::I32(v)) => i64::from(*v),
        _ => 0,
    }
}

/// A `Time`/`MicroTime`: an empty message is Go's zero time (its Marshal writes nothing).
fn timestamp(m: &DynamicMessage, secs: i64, nanos: i64) -> Option<jiff::Timestamp> {
    if m.fields().next().is_none() || (secs == GO_ZERO_TIME && nanos == 0) {
        return None;
    }
    jiff::Timestamp::new(secs, nanos as i32).ok()
}

/// Go's `time.Duration.String()` for `metav1.Duration`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (unit, div) = match n {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", trim_frac(n, div));
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, s) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = format!("{}s", trim_frac(s, 1_000_000_000));
    match (h, m) {
        (0, 0) => format!("{sign}{secs}"),
        (0, m) => format!("{sign}{m}m{secs}"),
        (h, m) => format!("{sign}{h}h{m}m{secs}"),
    }
}

/// `n / div` with the fraction's trailing zeros removed (`1.5`, `2`).
fn trim_frac(n: u64, div: u64) -> String {
    let (whole, frac) = (n / div, n % div);
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Kubernetes' JSON form of the types whose JSON is not their message shape; None otherwise.
fn special_json(m: &DynamicMessage) -> Option<Value> {
    let full = m.descriptor().full_name().to_string();
    let v = match full.as_str() {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => {
            // The real server reads seconds only (time_proto.go).
            match timestamp(m, int_field(m, "seconds"), 0) {
                Some(t) => Value::from(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                None => Value::Null,
            }
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            let nanos = int_field(m, "nanos");
            match timestamp(m, int_field(m, "seconds"), nanos) {
                Some(t) => Value::from(format!(
                    "{}.{:06}Z",
                    t.strftime("%Y-%m-%dT%H:%M:%S"),
                    nanos / 1000
                )),
                None => Value::Null,
            }
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => {
            Value::from(go_duration(int_field(m, "duration")))
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            if int_field(m, "type") == 1 {
                let s = m.get_field_by_name("strVal");
                Value::from(
                    s.and_then(|s| s.as_str().map(String::from))
                        .unwrap_or_default(),
                )
            } else {
                Value::from(int_field(m, "intVal"))
            }
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => {
            let s = m.get_field_by_name("string");
            Value::from(
                s.and_then(|s| s.as_str().map(String::from))
                    .unwrap_or_default(),
            )
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension"
        | "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            let name = if full.ends_with("FieldsV1") {
                "Raw"
            } else {
                "raw"
            };
            let raw = m
                .get_field_by_name(name)
                .and_then(|v| v.as_bytes().cloned())
                .unwrap_or_default();
            if raw.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&raw).unwrap_or(Value::Null)
            }
        }
        n if n.ends_with(".ExtraValue") || n == "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs" => {
            match m.get_field_by_name("items").as_deref() {
                Some(PValue::List(l)) => Value::Array(l.iter().map(value_json).collect()),
                _ => Value::Array(vec![]),
            }
        }
        _ => return None,
    };
    Some(v)
}

fn is_zero(v: &PValue) -> bool {
    match v {
        PValue::Bool(b) => !b,
        PValue::I32(n) => *n == 0,
        PValue::I64(n) => *n == 0,
        PValue::U32(n) => *n == 0,
        PValue::U64(n) => *n == 0,
        PValue::F32(n) => *n == 0.0,
        PValue::F64(n) => *n == 0.0,
        PValue::String(s) => s.is_empty(),
        PValue::Bytes(b) => b.is_empty(),
        PValue::EnumNumber(n) => *n == 0,
        PValue::List(l) => l.is_empty(),
        PValue::Map(m) => m.is_empty(),
        PValue::Message(_) => false,
    }
}

/// A message as Kubernetes JSON: the fields present on the wire under their JSON names (the
/// proto field names of Kubernetes' protos are the JSON names), zero scalars left out unless
/// the Go field keeps them.
fn message_json(m: &DynamicMessage) -> Value {
    if let Some(v) = special_json(m) {
        return v;
    }
    let full = m.descriptor().full_name().to_string();
    let kept = &schema().zero_kept;
    let mut out = Map::new();
    for (f, v) in m.fields() {
        if is_zero(v) && !(matches!(v, PValue::List(_) | PValue::Map(_))) {
            let key = format!("{full}.{}", f.name());
            if !kept.contains(key.as_str()) {
                continue;
            }
        }
        if matches!(v, PValue::List(l) if l.is_empty())
            || matches!(v, PValue::Map(m) if m.is_empty())
        {
            continue;
        }
        let json = value_json(v);
        if schema()
            .inline
            .contains(format!("{full}.{}", f.name()).as_str())
        {
            if let Value::Object(inner) = json {
                out.extend(inner);
            }
            continue;
        }
        out.insert(f.name().to_string(), json);
    }
    Value::Object(out)
}

fn map_key(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn value_json(v: &PValue) -> Value {
    use base64::Engine as _;
    match v {
        PValue::Bool(b) => Value::from(*b),
        PValue::I32(n) => Value::from(*n),
        PValue::I64(n) => Value::from(*n),
        PValue::U32(n) => Value::from(*n),
        PValue::U64(n) => Value::from(*n),
        PValue::F32(n) => Value::from(f64::from(*n)),
        PValue::F64(n) => Value::from(*n),
        PValue::String(s) => Value::from(s.clone()),
        PValue::Bytes(b) => Value::from(base64::engine::general_purpose::STANDARD.encode(b)),
        PValue::EnumNumber(n) => Value::from(*n),
        PValue::Message(m) => message_json(m),
        PValue::List(l) => Value::Array(l.iter().map(value_json).collect()),
        PValue::Map(m) => {
            let mut entries: Vec<_> = m.iter().map(|(k, v)| (map_key(k), value_json(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Encode `json`-shaped test input the way a Go client would: build the message from its
    /// JSON mapping with prost-reflect and wrap it in the envelope.
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let pool = &schema().pool;
        let unknown = pool
            .get_message_by_name("k8s.io.apimachinery.pkg.runtime.Unknown")
            .unwrap();
        let tm = pool
            .get_message_by_name("k8s.io.apimachinery.pkg.runtime.TypeMeta")
            .unwrap();
        let mut t = DynamicMessage::new(tm);
        t.set_field_by_name("apiVersion", PValue::String(api_version.into()));
        t.set_field_by_name("kind", PValue::String(kind.into()));
        let mut u = DynamicMessage::new(unknown);
        u.set_field_by_name("typeMeta", PValue::Message(t));
        u.set_field_by_name("raw", PValue::Bytes(raw.to_vec().into()));
        let mut out = MAGIC.to_vec();
        out.extend(u.encode_to_vec());
        out
    }

    fn msg(name: &str) -> DynamicMessage {
        DynamicMessage::new(schema().pool.get_message_by_name(name).unwrap())
    }

    #[test]
    fn kubectl_default_delete_options_body_is_empty_options() {
        let body = hex("6b3873000a130a027631120d44656c6574654f7074696f6e7312001a002200");
        assert_eq!(
            decode(&body).unwrap(),
            serde_json::json!({"apiVersion": "v1", "kind": "DeleteOptions"})
        );
    }

    #[test]
    fn delete_options_grace_zero_dry_run_and_preconditions_are_kept() {
        let mut pre = msg(&format!("{META}.Preconditions"));
        pre.set_field_by_name("uid", PValue::String("u".into()));
        pre.set_field_by_name("resourceVersion", PValue::String("42".into()));
        let mut o = msg(&format!("{META}.DeleteOptions"));
        o.set_field_by_name("gracePeriodSeconds", PValue::I64(0));
        o.set_field_by_name("preconditions", PValue::Message(pre));
        o.set_field_by_name("dryRun", PValue::List(vec![PValue::String("All".into())]));
        let v = decode(&envelope("v1", "DeleteOptions", &o.encode_to_vec())).unwrap();
        assert_eq!(v["gracePeriodSeconds"], 0);
        assert_eq!(v["dryRun"], serde_json::json!(["All"]));
        assert_eq!(v["preconditions"]["uid"], "u");
        assert_eq!(v["preconditions"]["resourceVersion"], "42");
    }

    #[test]
    fn deployment_with_kubernetes_json_forms() {
        let mut meta = msg(&format!("{META}.ObjectMeta"));
        meta.set_field_by_name("name", PValue::String("web".into()));
        meta.set_field_by_name("namespace", PValue::String(String::new()));
        meta.set_field_by_name("generation", PValue::I64(0));
        meta.set_field_by_name(
            "creationTimestamp",
            PValue::Message(msg(&format!("{META}.Time"))),
        );
        let mut ios = msg("k8s.io.apimachinery.pkg.util.intstr.IntOrString");
        ios.set_field_by_name("type", PValue::I64(1));
        ios.set_field_by_name("strVal", PValue::String("25%".into()));
        let mut ru = msg("k8s.io.api.apps.v1.RollingUpdateDeployment");
        ru.set_field_by_name("maxSurge", PValue::Message(ios));
        let mut strat = msg("k8s.io.api.apps.v1.DeploymentStrategy");
        strat.set_field_by_name("rollingUpdate", PValue::Message(ru));
        let mut spec = msg("k8s.io.api.apps.v1.DeploymentSpec");
        spec.set_field_by_name("replicas", PValue::I32(0));
        spec.set_field_by_name("minReadySeconds", PValue::I32(0));
        spec.set_field_by_name("paused", PValue::Bool(false));
        spec.set_field_by_name("strategy", PValue::Message(strat));
        let mut q = msg("k8s.io.apimachinery.pkg.api.resource.Quantity");
        q.set_field_by_name("string", PValue::String("100m".into()));
        let mut res = msg("k8s.io.api.core.v1.ResourceRequirements");
        res.set_field_by_name(
            "requests",
            PValue::Map([(MapKey::String("cpu".into()), PValue::Message(q))].into()),
        );
        let mut c = msg("k8s.io.api.core.v1.Container");
        c.set_field_by_name("name", PValue::String("nginx".into()));
        c.set_field_by_name("image", PValue::String("nginx".into()));
        c.set_field_by_name("resources", PValue::Message(res));
        let mut ps = msg("k8s.io.api.core.v1.PodSpec");
        ps.set_field_by_name("containers", PValue::List(vec![PValue::Message(c)]));
        let mut tpl = msg("k8s.io.api.core.v1.PodTemplateSpec");
        tpl.set_field_by_name("spec", PValue::Message(ps));
        spec.set_field_by_name("template", PValue::Message(tpl));
        let mut d = msg("k8s.io.api.apps.v1.Deployment");
        d.set_field_by_name("metadata", PValue::Message(meta));
        d.set_field_by_name("spec", PValue::Message(spec));
        d.set_field_by_name(
            "status",
            PValue::Message(msg("k8s.io.api.apps.v1.DeploymentStatus")),
        );
        let v = decode(&envelope("apps/v1", "Deployment", &d.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "creationTimestamp": null},
                "spec": {
                    "replicas": 0,
                    "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                    "template": {"spec": {"containers": [
                        {"name": "nginx", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}
                    ]}}
                },
                "status": {}
            })
        );
    }

    #[test]
    fn times_and_durations_have_go_forms() {
        let mut t = msg(&format!("{META}.MicroTime"));
        t.set_field_by_name("seconds", PValue::I64(1_700_000_000));
        t.set_field_by_name("nanos", PValue::I32(123_456_789));
        assert_eq!(message_json(&t), "2023-11-14T22:13:20.123456Z");
        let mut t = msg(&format!("{META}.Time"));
        t.set_field_by_name("seconds", PValue::I64(1_700_000_000));
        assert_eq!(message_json(&t), "2023-11-14T22:13:20Z");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
    }

    #[test]
    fn encoded_answers_decode_to_the_same_json() {
        let d = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
                         "generation": 2, "creationTimestamp": "2024-05-06T07:08:09Z",
                         "labels": {"app": "web"}, "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                                           "resources": {"requests": {"cpu": "100m"}}}]}}},
            "status": {"replicas": 3, "conditions": [{"type": "Available", "status": "True",
                        "lastTransitionTime": "2024-05-06T07:08:10Z"}]}
        });
        let bytes = encode(&d).unwrap();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(decode(&bytes).unwrap(), d);
        let st = serde_json::json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
            "status": "Failure", "message": "pods \"x\" not found", "reason": "NotFound",
            "details": {"name": "x", "kind": "pods"}, "code": 404});
        assert_eq!(decode(&encode(&st).unwrap()).unwrap(), st);
        assert!(encode(&serde_json::json!({"apiVersion": "v1", "kind": "Nope"})).is_none());
    }

    #[test]
    fn malformed_and_unknown_kinds_are_refused() {
        assert!(decode(b"nope").is_err());
        assert!(decode(b"k8s\0\x12\x09ab").is_err());
        let e = decode(&envelope("v1", "Frobnicator", &[])).unwrap_err();
        assert!(e.contains("Frobnicator"), "{e}");
    }

    #[test]
    fn inline_embedded_structs_and_empty_messages_round_trip() {
        let p = serde_json::json!({"apiVersion":"v1","kind":"PodList","metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"x","namespace":"d"},"spec":{"containers":[{"name":"app","livenessProbe":{"httpGet":{"path":"/","port":8080},"periodSeconds":5},"env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"cm","key":"k"}}}],"volumeMounts":[{"name":"scratch","mountPath":"/scratch"}]}],"volumes":[{"name":"scratch","emptyDir":{}}]}}]});
        let back = decode(&encode(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}

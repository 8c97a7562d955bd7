//! Generated PKI for the local control plane: a CA, the API server's serving certificate,
//! client certificates (the admin in `system:masters`, the controller-manager, the scheduler,
//! kwok, and per-node identities for mirror pods) and the service-account signing key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its key, PEM.
pub struct Identity {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM (PKCS#8).
    pub key_pem: String,
}

/// The files of a generated PKI.
pub struct Pki {
    /// Directory holding the files.
    pub dir: PathBuf,
}

impl Pki {
    /// CA certificate path.
    pub fn ca_crt(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// A file in the PKI directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> Result<String> {
        read(&self.ca_crt())
    }

    /// Generate everything into `dir` (replacing what is there).
    pub fn generate(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_key = KeyPair::generate()?;
        let ca = ca_params()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        write(&dir.join("ca.crt"), &ca_cert.pem())?;
        write(&dir.join("ca.key"), &ca_key.serialize_pem())?;
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        let issuer = Issuer::new(ca, ca_key);
        let mut serving = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "10.0.0.1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ])?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = serving.signed_by(&key, &issuer)?;
        write(&dir.join("apiserver.crt"), &cert.pem())?;
        write(&dir.join("apiserver.key"), &key.serialize_pem())?;
        for (file, cn, org) in [
            ("admin", "kdrain-admin", Some("system:masters")),
            ("controller-manager", "system:kube-controller-manager", None),
            ("scheduler", "system:kube-scheduler", None),
            ("kwok", "kwok", Some("system:masters")),
        ] {
            let id = client_identity(&issuer, cn, org)?;
            write(&dir.join(format!("{file}.crt")), &id.cert_pem)?;
            write(&dir.join(format!("{file}.key")), &id.key_pem)?;
        }
        // The service-account signing key and its public half (for the API server to verify).
        let sa = KeyPair::generate()?;
        write(&dir.join("sa.key"), &sa.serialize_pem())?;
        write(&dir.join("sa.pub"), &sa.public_key_pem())?;
        Ok(pki)
    }

    /// A client certificate signed by this PKI's CA (e.g. `system:node:<name>` in
    /// `system:nodes`, the identity a kubelet has).
    pub fn client(&self, cn: &str, org: Option<&str>) -> Result<Identity> {
        let key = KeyPair::from_pem(&read(&self.file("ca.key"))?)?;
        // The same name and key as the CA certificate: what a child certificate's issuer is.
        let issuer = Issuer::new(ca_params()?, key);
        client_identity(&issuer, cn, org)
    }
}

/// The CA's parameters (its name, and that it is a CA).
fn ca_params() -> Result<CertificateParams> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "kdrain-control-plane-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

fn client_identity(issuer: &Issuer<'_, KeyPair>, cn: &str, org: Option<&str>) -> Result<Identity> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = org {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok(Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))
}

/// A kubeconfig (YAML) for `server` with the CA and a client certificate embedded.
pub fn kubeconfig(server: &str, ca_pem: &str, id: &Identity, user: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kdrain-real", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(&id.cert_pem), "client-key-data": b64(&id.key_pem)}}],
        "contexts": [{"name": "kdrain-real", "context": {"cluster": "kdrain-real", "user": user}}],
        "current-context": "kdrain-real",
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

/// The identity stored as `<name>.crt`/`<name>.key` in the PKI directory.
pub fn stored_identity(pki: &Pki, name: &str) -> Result<Identity> {
    Ok(Identity {
        cert_pem: read(&pki.file(&format!("{name}.crt")))?,
        key_pem: read(&pki.file(&format!("{name}.key")))?,
    })
}

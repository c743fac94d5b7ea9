//! `ksr-apiserver init`: a self-made CA, the API server's serving
//! certificate, a tokens file and kubeconfigs for the admin and the routers,
//! written into one directory.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// What init needs to know.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Where the files go.
    pub dir: PathBuf,
    /// Addresses the serving certificate is valid for (and the first one
    /// the admin kubeconfig points at), with the port.
    pub addresses: Vec<IpAddr>,
    /// DNS names the certificate is also valid for.
    pub names: Vec<String>,
    /// The port clients connect to.
    pub port: u16,
    /// Router identities that get read-only kubeconfigs.
    pub routers: Vec<String>,
}

/// The files init wrote.
#[derive(Debug, Clone)]
pub struct InitFiles {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Serving certificate (PEM).
    pub cert: PathBuf,
    /// Serving key (PEM).
    pub key: PathBuf,
    /// Tokens file.
    pub tokens: PathBuf,
    /// Admin kubeconfig.
    pub admin_kubeconfig: PathBuf,
}

/// Why init failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Certificate generation.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// Writing a file.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// No address to serve.
    #[error("at least one address is needed")]
    NoAddress,
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), InitError> {
    let io = |e| InitError::Io(path.display().to_string(), e);
    std::fs::write(path, text).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

/// A random hex token.
fn token() -> String {
    let mut b = [0u8; 24];
    if getrandom::fill(&mut b).is_err() {
        // Without entropy there is no safe token: make one unguessable enough
        // from the UID generator's fallback, which also uses the clock.
        return crate::store::new_uid().replace('-', "");
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A kubeconfig with the CA inline and a bearer token.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &str, token: &str) -> String {
    use std::io::Write as _;
    let ca = base64(ca_pem.as_bytes());
    let mut out = Vec::new();
    let _ = write!(
        out,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ksr\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: {user}@ksr\n  context:\n    cluster: ksr\n    user: {user}\n    namespace: default\ncurrent-context: {user}@ksr\nusers:\n- name: {user}\n  user:\n    token: {token}\n"
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// A kubeconfig for a plain-HTTP server that runs without tokens (every
/// request admin): what in-process tests of the server and its clients use.
pub fn plain_kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {server}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\ncurrent-context: t\nusers:\n- name: t\n  user: {{}}\n"
    )
}

/// Standard base64 (kubeconfig's `-data` fields).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The server URL for an address and port.
pub fn server_url(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("https://{a}:{port}"),
        IpAddr::V6(a) => format!("https://[{a}]:{port}"),
    }
}

/// Writes the CA, serving certificate, tokens and kubeconfigs.
pub fn init(options: &InitOptions) -> Result<InitFiles, InitError> {
    let first = *options.addresses.first().ok_or(InitError::NoAddress)?;
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(|e| InitError::Io(dir.display().to_string(), e))?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ksr-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names = vec![
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "localhost".to_string(),
    ];
    names.extend(options.names.iter().cloned());
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let mut ips: Vec<IpAddr> = options.addresses.clone();
    for extra in [IpAddr::from([127, 0, 0, 1]), IpAddr::from([10, 96, 0, 1])] {
        if !ips.contains(&extra) {
            ips.push(extra);
        }
    }
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let files = InitFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("apiserver.crt"),
        key: dir.join("apiserver.key"),
        tokens: dir.join("tokens.csv"),
        admin_kubeconfig: dir.join("admin.kubeconfig"),
    };
    write(&files.ca, &ca_pem, false)?;
    write(&files.cert, &cert.pem(), false)?;
    write(&files.key, &key.serialize_pem(), true)?;

    let server = server_url(first, options.port);
    let admin_token = token();
    let mut tokens = format!(
        "{admin_token},admin,admin,\"{}\"\n",
        crate::auth::ADMIN_GROUP
    );
    write(
        &files.admin_kubeconfig,
        &kubeconfig(&server, &ca_pem, "admin", &admin_token),
        true,
    )?;
    for router in &options.routers {
        let t = token();
        let user = format!("system:ksr-router:{router}");
        let _ = writeln!(tokens, "{t},{user},{user},\"ksr:routers\"");
        let path = dir.join(format!("router-{router}.kubeconfig"));
        write(&path, &kubeconfig(&server, &ca_pem, &user, &t), true)?;
    }
    write(&files.tokens, &tokens, true)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}

//! Bearer-token authentication and a two-role authorization: members of
//! `system:masters` may do everything, everyone else only reads (get, list,
//! watch), which is what a router needs.
//!
//! The tokens file has kube-apiserver's `--token-auth-file` format:
//! `token,user,uid,"group1,group2"` per line.

use std::collections::HashMap;
use std::path::Path;

use crate::status::ApiError;

/// The group whose members may write.
pub const ADMIN_GROUP: &str = "system:masters";

/// What an authenticated user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every verb.
    All,
    /// get, list and watch.
    ReadOnly,
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name.
    pub user: String,
    /// What the user may do.
    pub access: Access,
}

/// A tokens file that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// Unreadable.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// A line without token and user.
    #[error("tokens file line {0}: expected token,user,uid[,\"groups\"]")]
    Line(usize),
}

/// The known tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_token: HashMap<String, Identity>,
}

impl Tokens {
    /// Parses the tokens file text.
    pub fn parse(text: &str) -> Result<Tokens, TokensError> {
        let mut by_token = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(4, ',');
            let token = fields.next().unwrap_or("").trim();
            let user = fields.next().unwrap_or("").trim();
            let _uid = fields.next();
            let groups = fields.next().unwrap_or("").trim().trim_matches('"');
            if token.is_empty() || user.is_empty() {
                return Err(TokensError::Line(i + 1));
            }
            let admin = groups.split(',').any(|g| g.trim() == ADMIN_GROUP);
            let access = if admin { Access::All } else { Access::ReadOnly };
            by_token.insert(
                token.to_string(),
                Identity {
                    user: user.to_string(),
                    access,
                },
            );
        }
        Ok(Tokens { by_token })
    }

    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokensError::Io(path.display().to_string(), e))?;
        Tokens::parse(&text)
    }

    /// The identity of an `Authorization` header: 401 when absent or unknown.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, ApiError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        self.by_token
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Whether `identity` may perform `verb`.
pub fn allows(identity: &Identity, verb: &str) -> bool {
    identity.access == Access::All || matches!(verb, "get" | "list" | "watch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_roles_and_refusals() {
        let tokens = Tokens::parse(
            "# comment\nadmintok,admin,1,\"system:masters\"\nroutertok,system:node:mac-worker,2,\"ksr:routers\"\n",
        )
        .expect("parses");
        let admin = tokens.authenticate(Some("Bearer admintok")).expect("admin");
        assert_eq!(admin.access, Access::All);
        assert!(allows(&admin, "delete"));
        let router = tokens
            .authenticate(Some("Bearer routertok"))
            .expect("router");
        assert!(allows(&router, "watch"));
        assert!(!allows(&router, "create"));
        assert_eq!(tokens.authenticate(None).map_err(|e| e.code), Err(401));
        assert_eq!(
            tokens.authenticate(Some("Bearer nope")).map_err(|e| e.code),
            Err(401)
        );
        assert!(matches!(
            Tokens::parse("onlytoken"),
            Err(TokensError::Line(1))
        ));
    }
}

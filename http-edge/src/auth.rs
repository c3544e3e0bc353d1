//! Who is calling: HS256 JWT bearer tokens carrying a subject and a role.
//!
//! The role decides which routes a caller may use; the subject decides which objects: a
//! customer's subject is their customer id, and routes check ownership with it.

use crate::problem::Problem;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// What a caller is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A person renting cars; acts only for themselves.
    Customer,
    /// A support or CRM agent.
    Support,
    /// Fleet staff: add cars, service them.
    Fleet,
    /// An auditor or regulator: reads history.
    Auditor,
    /// Another system: telematics, sagas, importers, test harnesses.
    Service,
}

impl Role {
    /// Every role, for help texts.
    pub const ALL: [Role; 5] = [
        Role::Customer,
        Role::Support,
        Role::Fleet,
        Role::Auditor,
        Role::Service,
    ];

    /// The role's name as tokens carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Support => "support",
            Role::Fleet => "fleet",
            Role::Auditor => "auditor",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}; expected one of customer, support, fleet, auditor, service")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The claims a Velka token carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The subject: a customer id for customers, an agent or service name otherwise.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Their role.
    pub role: Role,
    /// Their subject.
    pub subject: String,
}

impl Caller {
    /// How the caller appears as the actor of events: `<role>:<subject>`.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role, self.subject)
    }

    /// Refuses with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Problem::forbidden(format!(
                "role {} may not do this; allowed: {}",
                self.role,
                allowed.join(", ")
            )))
        }
    }

    /// Whether the caller is the customer with this id.
    pub fn is_customer(&self, customer_id: &str) -> bool {
        self.role == Role::Customer && self.subject == customer_id
    }
}

/// Signs and checks tokens with one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(<secret>)")
    }
}

/// A token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign token: {0}")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

impl TokenKeys {
    /// Keys from the shared secret (`VELKA_JWT_SECRET`).
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
        }
    }

    /// Issues a token for `subject` in `role`, valid for `ttl` from `now`.
    pub fn issue(
        &self,
        role: Role,
        subject: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<String, SignError> {
        let claims = TokenClaims {
            sub: subject.to_owned(),
            role,
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks a token's signature and expiry and returns its caller.
    pub fn verify(&self, token: &str) -> Result<Caller, Problem> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &validation)
            .map_err(|error| Problem::unauthorized(format!("invalid bearer token: {error}")))?;
        if data.claims.sub.trim().is_empty() {
            return Err(Problem::unauthorized("the token's subject is empty"));
        }
        Ok(Caller {
            role: data.claims.role,
            subject: data.claims.sub,
        })
    }

    /// The caller of a request from its `Authorization` header: `None` without one, an error
    /// for one that is malformed or invalid.
    pub fn caller_of(&self, parts: &Parts) -> Result<Option<Caller>, Problem> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value
            .to_str()
            .map_err(|_| Problem::unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Problem::unauthorized("use Authorization: Bearer <token>"))?;
        self.verify(token.trim()).map(Some)
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    TokenKeys: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        TokenKeys::from_ref(state)
            .caller_of(parts)?
            .ok_or_else(|| Problem::unauthorized("this route needs Authorization: Bearer <token>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn a_token_round_trips_its_role_and_subject() {
        let keys = TokenKeys::from_secret(b"secret");
        let token = keys
            .issue(Role::Support, "agent-7", Duration::hours(1), now())
            .unwrap();
        let caller = keys.verify(&token).unwrap();
        assert_eq!(caller.role, Role::Support);
        assert_eq!(caller.subject, "agent-7");
        assert_eq!(caller.actor(), "support:agent-7");
    }

    #[test]
    fn a_token_signed_with_another_secret_or_expired_is_refused() {
        let keys = TokenKeys::from_secret(b"secret");
        let other = TokenKeys::from_secret(b"other");
        let token = other
            .issue(Role::Service, "x", Duration::hours(1), now())
            .unwrap();
        assert_eq!(keys.verify(&token).unwrap_err().status, 401);
        let old = keys
            .issue(
                Role::Service,
                "x",
                Duration::hours(1),
                now() - Duration::days(1),
            )
            .unwrap();
        assert_eq!(keys.verify(&old).unwrap_err().status, 401);
    }

    #[test]
    fn require_names_the_allowed_roles() {
        let caller = Caller {
            role: Role::Customer,
            subject: "c".into(),
        };
        assert!(caller.require(&[Role::Customer]).is_ok());
        let problem = caller.require(&[Role::Support, Role::Auditor]).unwrap_err();
        assert_eq!(problem.status, 403);
        assert!(problem.detail.contains("support, auditor"));
    }

    #[test]
    fn roles_parse_from_their_names() {
        assert_eq!("fleet".parse::<Role>().unwrap(), Role::Fleet);
        assert!("admin".parse::<Role>().is_err());
    }
}

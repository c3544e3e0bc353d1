//! Which roles may use a route, named in the route's types: `Authorized<Support>`,
//! `Authorized<(Support, Service)>`. An extractor that knows the roles refuses a caller whose
//! role may not use the route (403) from the request's head, before anything reads the body, so
//! the answer does not depend on what was sent.
//!
//! The markers are types rather than values because a route's extractors are its argument
//! types; a tuple of markers allows any of its roles, and names them in the refusal in its order.

use crate::auth::{Caller, Role, TokenKeys};
use crate::problem::Problem;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::marker::PhantomData;

/// The roles allowed to use a route.
pub trait Roles {
    /// Allowed roles, in the order a refusal names them.
    const ALLOWED: &'static [Role];
}

/// A marker naming one role.
pub trait OneRole {
    /// The role.
    const ROLE: Role;
}

macro_rules! markers {
    ($($(#[$doc:meta])* $name:ident,)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;

        impl OneRole for $name {
            const ROLE: Role = Role::$name;
        }

        impl Roles for $name {
            const ALLOWED: &'static [Role] = &[Role::$name];
        }
    )*};
}

markers! {
    /// Only customers.
    Customer,
    /// Only support agents.
    Support,
    /// Only fleet staff.
    Fleet,
    /// Only auditors.
    Auditor,
    /// Only other systems.
    Service,
}

impl<A: OneRole, B: OneRole> Roles for (A, B) {
    const ALLOWED: &'static [Role] = &[A::ROLE, B::ROLE];
}

impl<A: OneRole, B: OneRole, C: OneRole> Roles for (A, B, C) {
    const ALLOWED: &'static [Role] = &[A::ROLE, B::ROLE, C::ROLE];
}

/// A caller with a valid bearer token (401 otherwise) whose role is one of `R` (403 otherwise).
#[derive(Debug)]
pub struct Authorized<R> {
    /// Who is calling.
    pub caller: Caller,
    roles: PhantomData<fn() -> R>,
}

impl<R: Roles> Authorized<R> {
    /// Admits `caller` if their role is one of `R`.
    pub fn admit(caller: Caller) -> Result<Self, Problem> {
        caller.require(R::ALLOWED)?;
        Ok(Self {
            caller,
            roles: PhantomData,
        })
    }
}

impl<S, R> FromRequestParts<S> for Authorized<R>
where
    S: Send + Sync,
    TokenKeys: FromRef<S>,
    R: Roles,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Self::admit(Caller::from_request_parts(parts, state).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            role,
            subject: "x".into(),
        }
    }

    #[test]
    fn a_tuple_allows_each_of_its_roles_and_names_them_in_order() {
        assert!(Authorized::<(Support, Service)>::admit(caller(Role::Service)).is_ok());
        assert!(Authorized::<(Support, Service)>::admit(caller(Role::Support)).is_ok());
        let refused =
            Authorized::<(Customer, Fleet, Support)>::admit(caller(Role::Auditor)).unwrap_err();
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.detail,
            "role auditor may not do this; allowed: customer, fleet, support"
        );
        assert!(Authorized::<Fleet>::admit(caller(Role::Customer)).is_err());
    }
}

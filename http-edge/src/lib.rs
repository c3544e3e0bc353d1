//! The HTTP edge shared by the command API and the query API: who is calling ([`auth`]) and
//! which roles may use a route ([`roles`]), how errors look ([`problem`], every kind of them in
//! one table: [`problems`]), and how a JSON body is read so that a bad one names its field
//! ([`json`]).
//!
//! It exists as its own crate so that the read side does not depend on the write side (or the
//! other way round) just to agree on tokens and errors.
//!
//! Architecture invariant: no business rules and no database; only HTTP conventions.

pub mod admission;
pub mod auth;
pub mod edge;
pub mod json;
pub mod openapi;
pub mod problem;
pub mod problems;
pub mod roles;

pub use auth::{Caller, Role, TokenKeys};
pub use json::JsonBody;
pub use problem::Problem;
pub use problems::ProblemType;
pub use roles::Authorized;

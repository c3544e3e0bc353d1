//! What a command route reads from its request, in one extractor: who is calling, whether their
//! role may use the route, the body, and the command's [`Envelope`] (actor, idempotency key,
//! request hash, correlation id). Path parameters stay a separate `Path` extractor, parsed by
//! the route with [`path_id`].
//!
//! Every extractor here reads in the same order, so that an answer never depends on something
//! read later: the bearer token (401), the role (403) — both from the request's head, before
//! the body is read — then the body (415, 400 naming the field), then the `Idempotency-Key`
//! header (400). The request hash is [`Envelope::read`]'s, over the method, the path and the
//! body's raw bytes, so idempotency records stored before keep matching.
//!
//! - [`Command`]: a bearer token and a JSON body.
//! - [`PathCommand`]: a bearer token and a path that says it all (park a trip, cancel a
//!   reservation): any body is taken unread and only hashed.
//! - [`OpenCommand`]: no bearer token; its [`Door`] says how the request gets in (anyone may
//!   register; the KYC provider signs its callbacks) and checks the raw body before it is
//!   parsed.

use crate::CommandContext;
use crate::pipeline::Envelope;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::ids::CustomerId;
use http_edge::roles::Roles;
use http_edge::{Authorized, Caller, Problem, ProblemType, Role};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A command with a JSON body of type `T`, from a caller whose role is one of `R`.
#[derive(Debug)]
pub struct Command<T, R> {
    /// Who is calling; their role is one of `R`.
    pub caller: Caller,
    /// The command's actor, idempotency key, request hash and correlation id.
    pub envelope: Envelope,
    /// The parsed body.
    pub body: T,
    roles: PhantomData<fn() -> R>,
}

impl<T, R> FromRequest<CommandContext> for Command<T, R>
where
    T: DeserializeOwned,
    R: Roles,
{
    type Rejection = Problem;

    async fn from_request(request: Request, context: &CommandContext) -> Result<Self, Problem> {
        let (caller, head, request) = admit::<R>(request, context).await?;
        let raw = http_edge::json::raw_json(request, context).await?;
        let body = http_edge::json::parse(&raw)?;
        let envelope = head.envelope(Some(&caller), "", &raw)?;
        Ok(Self {
            caller,
            envelope,
            body,
            roles: PhantomData,
        })
    }
}

/// A command whose path says it all, from a caller whose role is one of `R`. Whatever body
/// comes is not read, only hashed into the request hash (clients send none, or `{}`).
#[derive(Debug)]
pub struct PathCommand<R> {
    /// Who is calling; their role is one of `R`.
    pub caller: Caller,
    /// The command's actor, idempotency key, request hash and correlation id.
    pub envelope: Envelope,
    roles: PhantomData<fn() -> R>,
}

impl<R: Roles> FromRequest<CommandContext> for PathCommand<R> {
    /// A problem, or axum's own answer to a body that cannot be read (too large).
    type Rejection = Response;

    async fn from_request(request: Request, context: &CommandContext) -> Result<Self, Response> {
        let (caller, head, request) = admit::<R>(request, context)
            .await
            .map_err(IntoResponse::into_response)?;
        let raw = Bytes::from_request(request, context)
            .await
            .map_err(IntoResponse::into_response)?;
        let envelope = head
            .envelope(Some(&caller), "", &raw)
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            caller,
            envelope,
            roles: PhantomData,
        })
    }
}

/// How a request gets into an open route, one without a bearer token.
pub trait Door {
    /// The actor the command's events are recorded as (a route may name a better one once it
    /// knows it, as registration does with the new customer's id). Open requests share one
    /// idempotency scope, `anonymous`.
    const ACTOR: &'static str;
    /// Whether the body must be declared as JSON (`Content-Type`; 415 otherwise). A door that
    /// authenticates the raw body takes it however it is declared.
    const JSON_ONLY: bool;

    /// Lets the request in, or refuses it, from its headers and raw body, before anything of
    /// the body is parsed.
    fn admit(context: &CommandContext, headers: &HeaderMap, raw: &[u8]) -> Result<(), Problem>;
}

/// A command with a JSON body of type `T` on an open route, let in by the door `D`.
#[derive(Debug)]
pub struct OpenCommand<T, D> {
    /// The command's actor (`D::ACTOR`), idempotency key, request hash and correlation id.
    pub envelope: Envelope,
    /// The parsed body.
    pub body: T,
    door: PhantomData<fn() -> D>,
}

impl<T, D> FromRequest<CommandContext> for OpenCommand<T, D>
where
    T: DeserializeOwned,
    D: Door,
{
    /// A problem, or axum's own answer to a body that cannot be read (too large) at a door
    /// that takes any body.
    type Rejection = Response;

    async fn from_request(request: Request, context: &CommandContext) -> Result<Self, Response> {
        let head = Head::of(&request);
        let raw = if D::JSON_ONLY {
            http_edge::json::raw_json(request, context)
                .await
                .map_err(IntoResponse::into_response)?
        } else {
            Bytes::from_request(request, context)
                .await
                .map_err(IntoResponse::into_response)?
        };
        let open = (|| {
            D::admit(context, &head.headers, &raw)?;
            let body = http_edge::json::parse(&raw)?;
            let envelope = head.envelope(None, D::ACTOR, &raw)?;
            Ok::<_, Problem>(Self {
                envelope,
                body,
                door: PhantomData,
            })
        })();
        open.map_err(IntoResponse::into_response)
    }
}

/// What the envelope needs from the request's head, kept while the body is read.
struct Head {
    /// `<method> <uri>`, as the request hash has always been taken over.
    target: String,
    headers: HeaderMap,
}

impl Head {
    fn of(request: &Request) -> Self {
        Self {
            target: format!("{} {}", request.method(), request.uri()),
            headers: request.headers().clone(),
        }
    }

    fn envelope(
        &self,
        caller: Option<&Caller>,
        anonymous_actor: &str,
        raw: &[u8],
    ) -> Result<Envelope, Problem> {
        Envelope::read(caller, anonymous_actor, &self.headers, &self.target, raw)
    }
}

/// The caller (401) if their role is one of `R` (403), read from the head before the body.
async fn admit<R: Roles>(
    request: Request,
    context: &CommandContext,
) -> Result<(Caller, Head, Request), Problem> {
    let (mut parts, body) = request.into_parts();
    let caller = Authorized::<R>::from_request_parts(&mut parts, context)
        .await?
        .caller;
    let request = Request::from_parts(parts, body);
    let head = Head::of(&request);
    Ok((caller, head, request))
}

/// Parses an id from the path; a malformed one names nothing that exists, so it is a 404.
pub(crate) fn path_id(raw: &str, rule: ProblemType, what: &str) -> Result<uuid::Uuid, Problem> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| Problem::not_found(rule, format!("{what} {raw:?} does not exist")))
}

/// The customer id of a customer caller: their token's subject.
pub(crate) fn customer_of(caller: &Caller) -> Result<CustomerId, Problem> {
    caller.require(&[Role::Customer])?;
    caller
        .subject
        .parse()
        .map(CustomerId)
        .map_err(|_| Problem::forbidden("the token's subject is not a customer id"))
}

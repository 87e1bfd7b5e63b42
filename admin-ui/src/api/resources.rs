//! The uniform collections (upstreams, routes, consumers, plans, JWT issuers, certificates):
//! one generic handler per verb over [`Resource`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::{
    CertificateSpec, Change, Config, ConsumerSpec, JwtIssuerSpec, Kind, Object, PlanSpec,
    RouteSpec, UpstreamSpec,
};

use super::body::{self, IdRule, RawBody};
use super::{Actor, AdminState, ApiError};

/// An object kind served as a collection of `{id}` items.
pub(crate) trait Resource:
    Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    const KIND: Kind;
    /// The stored objects of this kind, sorted by id.
    fn all(config: &Config) -> &[Self];
    fn id(&self) -> &str;
    fn into_object(self) -> Object;
    /// The object as the API shows it: secrets removed.
    fn shown(self) -> Self {
        self
    }
}

macro_rules! resource {
    ($spec:ty, $kind:ident, $field:ident) => {
        impl Resource for $spec {
            const KIND: Kind = Kind::$kind;
            fn all(config: &Config) -> &[Self] {
                &config.$field
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn into_object(self) -> Object {
                Object::$kind(self)
            }
        }
    };
}

resource!(UpstreamSpec, Upstream, upstreams);
resource!(RouteSpec, Route, routes);
resource!(ConsumerSpec, Consumer, consumers);
resource!(PlanSpec, Plan, plans);

impl Resource for JwtIssuerSpec {
    const KIND: Kind = Kind::JwtIssuer;
    fn all(config: &Config) -> &[Self] {
        &config.jwt_issuers
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn into_object(self) -> Object {
        Object::JwtIssuer(self)
    }
    /// HMAC secrets are shown as `""`; a PUT that leaves them so keeps the stored ones.
    fn shown(mut self) -> Self {
        storage::hide_issuer_secrets(&mut self);
        self
    }
}

impl Resource for CertificateSpec {
    const KIND: Kind = Kind::Certificate;
    fn all(config: &Config) -> &[Self] {
        &config.certificates
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn into_object(self) -> Object {
        Object::Certificate(self)
    }
    /// The private key is never shown.
    fn shown(mut self) -> Self {
        storage::hide_certificate_key(&mut self);
        self
    }
}

/// The stored object of kind `R` with `id`, as shown.
pub(crate) fn find<R: Resource>(state: &AdminState, id: &str) -> Option<R> {
    R::all(&state.store().config())
        .iter()
        .find(|r| r.id() == id)
        .cloned()
        .map(R::shown)
}

/// `GET /api/v1/{kind}`: every object, sorted by id.
pub(crate) async fn list<R: Resource>(State(state): State<AdminState>) -> Json<Vec<R>> {
    let config = state.store().config();
    Json(R::all(&config).iter().cloned().map(R::shown).collect())
}

/// `GET /api/v1/{kind}/{id}`: 200 or 404.
pub(crate) async fn read<R: Resource>(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<R>, ApiError> {
    find(&state, &id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(R::KIND, &id))
}

/// `POST /api/v1/{kind}`: 201 with the stored object; 409 when the id exists.
pub(crate) async fn create<R: Resource>(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<R>), ApiError> {
    let object: R = body::object_with_id(&bytes, IdRule::Required)?;
    let id = object.id().to_owned();
    state
        .apply(Change::Create(object.clone().into_object()), &actor)
        .await?;
    let stored = find(&state, &id).unwrap_or_else(|| object.shown());
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `PUT /api/v1/{kind}/{id}`: 200 with the stored object; 404 when the id does not exist.
pub(crate) async fn replace<R: Resource>(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<Json<R>, ApiError> {
    let object: R = body::object_with_id(&bytes, IdRule::FromPath(&id))?;
    state
        .apply(Change::Replace(object.clone().into_object()), &actor)
        .await?;
    Ok(Json(find(&state, &id).unwrap_or_else(|| object.shown())))
}

/// `DELETE /api/v1/{kind}/{id}`: 204; 404 when missing; 409 when still referenced.
pub(crate) async fn remove<R: Resource>(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .apply(Change::Delete { kind: R::KIND, id }, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

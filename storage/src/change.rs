//! Applies a [`Change`] to a config in memory: the existence rules (`Conflict`, `NotFound`,
//! `InUse`), the consumer cascade, and imports. Nothing here touches sled.

use policies::PolicySpec;

use crate::spec::Config;
use crate::trees::{self, Entity};
use crate::{Change, Kind, Object, StoreError};

/// The config a change leads to, not yet validated.
pub(crate) struct Planned {
    pub config: Config,
    /// For the audit log: `create route orders`.
    pub action: String,
    /// The one object created or replaced, whose problems are reported relative to it.
    pub object: Option<(Kind, String)>,
    /// Whether the change states the whole config (problems already present count too).
    pub is_whole: bool,
}

/// The config `change` turns `current` into (sorted), or why it cannot be made.
pub(crate) fn plan(current: &Config, change: Change) -> Result<Planned, StoreError> {
    let mut config = current.clone();
    let planned = match change {
        Change::Create(object) => {
            let (kind, id) = (object.kind(), object.id().to_owned());
            if exists(&config, kind, &id) {
                return Err(StoreError::Conflict { kind, id });
            }
            upsert(&mut config, object);
            single(config, "create", kind, id)
        }
        Change::Replace(object) => {
            let (kind, id) = (object.kind(), object.id().to_owned());
            if !exists(&config, kind, &id) {
                return Err(StoreError::NotFound { kind, id });
            }
            upsert(&mut config, object);
            single(config, "replace", kind, id)
        }
        Change::Delete { kind, id } => {
            if !exists(&config, kind, &id) {
                return Err(StoreError::NotFound { kind, id });
            }
            if let Some(by) = used_by(&config, kind, &id) {
                return Err(StoreError::InUse { kind, id, by });
            }
            delete(&mut config, kind, &id);
            Planned {
                config,
                action: format!("delete {kind} {id}"),
                object: None,
                is_whole: false,
            }
        }
        Change::Import {
            config: imported,
            replace,
        } => {
            if replace {
                config = imported;
            } else {
                merge(&mut config, imported);
            }
            let how = if replace { "replace" } else { "merge" };
            Planned {
                config,
                action: format!("import config ({how})"),
                object: None,
                is_whole: replace,
            }
        }
    };
    let mut planned = planned;
    crate::secrets::keep_hidden(&mut planned.config, current);
    trees::sort(&mut planned.config);
    Ok(planned)
}

fn single(config: Config, verb: &str, kind: Kind, id: String) -> Planned {
    Planned {
        config,
        action: format!("{verb} {kind} {id}"),
        object: Some((kind, id)),
        is_whole: false,
    }
}

fn exists(config: &Config, kind: Kind, id: &str) -> bool {
    fn has<T: Entity>(config: &Config, id: &str) -> bool {
        T::list(config).iter().any(|o| o.id() == id)
    }
    use crate::spec::*;
    match kind {
        Kind::Upstream => has::<UpstreamSpec>(config, id),
        Kind::Route => has::<RouteSpec>(config, id),
        Kind::Consumer => has::<ConsumerSpec>(config, id),
        Kind::Plan => has::<PlanSpec>(config, id),
        Kind::JwtIssuer => has::<JwtIssuerSpec>(config, id),
        Kind::Certificate => has::<CertificateSpec>(config, id),
        Kind::Key => has::<KeyRecord>(config, id),
        Kind::Credential => has::<CredentialRecord>(config, id),
    }
}

/// Puts `object` in place of the one with its id, or adds it where its id sorts. `config`
/// is sorted by id (as every config the store holds, and every parsed one, is), and stays
/// so: [`trees::sort`] then has nothing to do, where sorting 100,001 keys again took an
/// 8 MB scratch buffer on every key created.
pub(crate) fn upsert(config: &mut Config, object: Object) {
    fn put<T: Entity>(config: &mut Config, item: T) {
        let list = T::list_mut(config);
        match list.binary_search_by(|o| o.id().cmp(item.id())) {
            Ok(at) => list[at] = item,
            Err(at) => {
                // The list was cloned to its length: a plain push would double it (100,000
                // keys and one more would hold room for 200,000 until the next change).
                list.reserve_exact(1);
                list.insert(at, item);
            }
        }
    }
    match object {
        Object::Upstream(o) => put(config, o),
        Object::Route(o) => put(config, o),
        Object::Consumer(o) => put(config, o),
        Object::Plan(o) => put(config, o),
        Object::JwtIssuer(o) => put(config, o),
        Object::Certificate(o) => put(config, o),
        Object::Key(o) => put(config, o),
        Object::Credential(o) => put(config, o),
    }
}

/// Upserts every object of `imported` into `config`.
fn merge(config: &mut Config, imported: Config) {
    let Config {
        upstreams,
        routes,
        consumers,
        plans,
        jwt_issuers,
        certificates,
        keys,
        credentials,
    } = imported;
    let objects = upstreams
        .into_iter()
        .map(Object::Upstream)
        .chain(routes.into_iter().map(Object::Route))
        .chain(consumers.into_iter().map(Object::Consumer))
        .chain(plans.into_iter().map(Object::Plan))
        .chain(jwt_issuers.into_iter().map(Object::JwtIssuer))
        .chain(certificates.into_iter().map(Object::Certificate))
        .chain(keys.into_iter().map(Object::Key))
        .chain(credentials.into_iter().map(Object::Credential));
    for object in objects {
        upsert(config, object);
    }
}

/// What still refers to the object, named as `route orders`, if anything.
fn used_by(config: &Config, kind: Kind, id: &str) -> Option<String> {
    match kind {
        Kind::Upstream => config
            .routes
            .iter()
            .find(|r| r.upstream == id)
            .map(|r| format!("route {}", r.id)),
        Kind::Plan => config
            .consumers
            .iter()
            .find(|c| c.plan.as_deref() == Some(id))
            .map(|c| format!("consumer {}", c.id)),
        Kind::JwtIssuer => {
            let is_last = config.jwt_issuers.len() == 1;
            config
                .routes
                .iter()
                .find(|r| {
                    r.policies.iter().any(|p| match p {
                        // An empty list means every issuer: it needs at least one left.
                        PolicySpec::Jwt(jwt) if jwt.issuers.is_empty() => is_last,
                        PolicySpec::Jwt(jwt) => jwt.issuers.iter().any(|i| i == id),
                        _ => false,
                    })
                })
                .map(|r| format!("route {}", r.id))
        }
        _ => None,
    }
}

/// Removes the object; a consumer takes its keys and credentials with it.
pub(crate) fn delete(config: &mut Config, kind: Kind, id: &str) {
    fn drop_id<T: Entity>(config: &mut Config, id: &str) {
        T::list_mut(config).retain(|o| o.id() != id);
    }
    use crate::spec::*;
    match kind {
        Kind::Upstream => drop_id::<UpstreamSpec>(config, id),
        Kind::Route => drop_id::<RouteSpec>(config, id),
        Kind::Consumer => {
            drop_id::<ConsumerSpec>(config, id);
            config.keys.retain(|k| k.consumer != id);
            config.credentials.retain(|c| c.consumer != id);
        }
        Kind::Plan => drop_id::<PlanSpec>(config, id),
        Kind::JwtIssuer => drop_id::<JwtIssuerSpec>(config, id),
        Kind::Certificate => drop_id::<CertificateSpec>(config, id),
        Kind::Key => drop_id::<KeyRecord>(config, id),
        Kind::Credential => drop_id::<CredentialRecord>(config, id),
    }
}

//! The gateway: Pingora server and `ProxyHttp` impl, router, upstream pools and health
//! checks, metrics, access log, config reload. Wires in storage and admin-ui.
//!
//! Owns the request path. Depends on `storage`, `policies` and `admin-ui` (only to mount
//! its router and implement its `LiveView`); nothing depends on edge.

pub mod access_log;
pub mod admin_server;
pub mod bare;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod compress;
pub mod conn_limit;
pub mod deadline;
pub mod downstream;
pub mod fd_limit;
pub mod forwarded;
pub mod framing;
pub mod gateway;
pub mod grpc;
pub mod grpc_web;
pub mod h2c;
pub mod headers;
pub mod http10;
pub mod live;
pub mod metrics;
pub mod offline;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod request_id;
pub mod respond;
pub mod response_header;
pub mod routing;
pub mod snapshot;
pub mod target;
pub mod tls;
pub mod trim;
pub mod upgrade;
pub mod upstream;
pub mod usage;

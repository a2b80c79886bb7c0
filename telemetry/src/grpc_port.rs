//! What every Chat4All gRPC port serves beside its own services: gRPC
//! health (`grpc.health.v1`) and server reflection, v1 and v1alpha (grpcurl
//! 1.8 speaks only v1alpha). Built here once, so that every port, whatever
//! serves it, describes itself the same way.
//!
//! Reflection lists exactly what the port serves: the services added
//! through [`GrpcPort::serve`], health, and reflection itself. The chat4all
//! descriptor set describes every service of every crate, so listing what a
//! set holds would advertise services the port does not have; the names are
//! taken from the services added instead. The `google.rpc` error details
//! are registered on every port, so a client can decode the `BadRequest`
//! that a status carries.
//!
//! Health says SERVING, for the whole port (`""`) and for each service,
//! from the moment the port is built; [`PortHealth::draining`] turns all of
//! them NOT_SERVING when shutdown begins and only then lets the server stop
//! accepting, so a probe or a balancer sees the drain before the port goes,
//! and a client watching health is told and let go rather than holding the
//! drain open.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use prost::Message as _;
use prost_types::FileDescriptorSet;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The services one gRPC port serves, with the descriptors that describe
/// them; [`build`](Self::build) adds health and reflection.
#[derive(Debug, Default)]
pub struct GrpcPort {
    routes: Routes,
    names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
}

impl GrpcPort {
    /// A port serving nothing yet: health and reflection only, once built.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an encoded `FileDescriptorSet` that describes services
    /// added with [`serve`](Self::serve) (and the messages they use).
    pub fn descriptors(mut self, encoded_set: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded_set);
        self
    }

    /// Adds a service; reflection lists it and health reports on it.
    pub fn serve<S>(mut self, service: S) -> Self
    where
        S: tonic::codegen::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// The routes to serve (`Server::builder().add_routes(..)`) and the
    /// health of the port, SERVING everywhere.
    pub async fn build(self) -> Result<(Routes, PortHealth), tonic_reflection::server::Error> {
        let Self {
            routes,
            names,
            descriptor_sets,
        } = self;
        let (reporter, health) = tonic_health::server::health_reporter();
        let error_details = error_details()?;
        let reflection = |builder: tonic_reflection::server::Builder<'static>| {
            let builder = descriptor_sets
                .iter()
                .chain(ADMIN_DESCRIPTORS)
                .fold(builder, |b, set| b.register_encoded_file_descriptor_set(set))
                .register_file_descriptor_set(error_details.clone());
            names
                .iter()
                .chain(ADMIN_SERVICES)
                .fold(builder, |b, name| b.with_service_name(*name))
        };
        let v1 = reflection(tonic_reflection::server::Builder::configure()).build_v1()?;
        let v1alpha = reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?;
        let routes = routes.add_service(health).add_service(v1).add_service(v1alpha);
        let health = PortHealth {
            reporter,
            names: names.into(),
        };
        health.set(ServingStatus::Serving).await;
        Ok((routes, health))
    }
}

/// What describes health and both reflections: each version's builder
/// registers its own only, yet both are listed.
const ADMIN_DESCRIPTORS: &[&[u8]] = &[
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// The `google.rpc` error details (tonic-types encodes them, so its
/// descriptors match), under googleapis' file names: tonic-types calls its
/// files `status.proto` and `error_details.proto`, and a client that
/// already holds `google/rpc/status.proto` (Python's
/// googleapis-common-protos, for one) would find every `google.rpc` symbol
/// defined twice.
fn error_details() -> Result<FileDescriptorSet, prost::DecodeError> {
    let mut set = FileDescriptorSet::decode(tonic_types::pb::FILE_DESCRIPTOR_SET)?;
    let canonical = |name: &mut String| {
        if matches!(name.as_str(), "status.proto" | "error_details.proto") {
            *name = format!("google/rpc/{name}");
        }
    };
    for file in &mut set.file {
        if let Some(name) = file.name.as_mut() {
            canonical(name);
        }
        file.dependency.iter_mut().for_each(canonical);
    }
    Ok(set)
}

/// What every port serves besides its own services.
const ADMIN_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The health of one port: the whole port (`""`) and each of its services.
#[derive(Debug, Clone)]
pub struct PortHealth {
    reporter: HealthReporter,
    names: Arc<[&'static str]>,
}

impl PortHealth {
    /// The reporter behind it, for a service that reports on parts of
    /// itself under names of its own.
    pub fn reporter(&self) -> &HealthReporter {
        &self.reporter
    }

    /// Sets the whole port and every service it serves to `status`.
    pub async fn set(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for name in self.names.iter() {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// The shutdown future to give the server: resolves once `shutdown`
    /// fires and the port says NOT_SERVING, in that order. Then it forgets
    /// the port's statuses, which ends every open `Watch` (after it has
    /// sent NOT_SERVING): a graceful shutdown waits for open streams, and a
    /// client watching health would otherwise hold the drain to its
    /// deadline.
    pub fn draining(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        let health = self.clone();
        async move {
            shutdown.cancelled().await;
            health.set(ServingStatus::NotServing).await;
            let mut reporter = health.reporter.clone();
            reporter.clear_service_status("").await;
            for name in health.names.iter() {
                reporter.clear_service_status(name).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A client resolving BadRequest asks next for what its file imports,
    /// by the name the file gives.
    #[test]
    fn the_error_details_come_under_googleapis_names_with_what_they_import() {
        let set = error_details().unwrap();
        let names: Vec<_> = set.file.iter().filter_map(|f| f.name.clone()).collect();
        for file in &set.file {
            for dependency in &file.dependency {
                assert!(names.contains(dependency), "{dependency} missing from {names:?}");
            }
        }
        let details = set
            .file
            .iter()
            .find(|f| f.name.as_deref() == Some("google/rpc/error_details.proto"))
            .unwrap();
        assert!(
            details
                .message_type
                .iter()
                .any(|m| m.name.as_deref() == Some("BadRequest"))
        );
    }
}

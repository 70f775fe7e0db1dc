//! End-to-end tests: the real `tessera` binary on loopback, real plugins built
//! for wasm32-wasip2, tokens verified by an independent JWT library against the
//! JWKS fetched over HTTP. One test binary keeps link time down.

mod abi;
mod auth0_actions;
mod browser;
mod cli;
mod client_credentials;
mod client_libraries;
mod demo;
mod deploy;
mod devkit;
mod egress;
mod http_edge;
mod logs;
mod moving_up;
mod nginx;
mod operations;
mod plugins;
mod races;
mod reload;
mod replay;
mod replicas;
mod rotation;
mod sandbox;
mod secrets;
mod shadow;
mod signed;
mod support;
mod token_ops;
mod user_flows;

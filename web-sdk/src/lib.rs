//! dLocker in the browser: `dlocker-sdk` compiled to WebAssembly with JS bindings
//! (`web-sdk/API.md`). The page talks gRPC-Web directly to every trustee, so the wallet secret
//! never leaves the customer's device; the page's `navigator.credentials` is the passkey, called
//! back once per ceremony with WebAuthn JSON. No crypto is written in JavaScript.
//!
//! [`logic`] holds everything that does not touch JavaScript (and is unit-tested natively);
//! the wasm-bindgen layer is compiled for `wasm32` only. Build with `scripts/build-web.sh`.
#![warn(missing_docs)]

pub mod logic;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// `dlocker-web <version> (<protocol version>)`.
pub fn version_string() -> String {
    format!(
        "dlocker-web {} ({})",
        env!("CARGO_PKG_VERSION"),
        dlocker_sdk::proto::PROTOCOL_VERSION
    )
}

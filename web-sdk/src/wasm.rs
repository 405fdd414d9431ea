//! The wasm-bindgen layer: `DlockerClient` and `version` as `API.md` documents them. Everything
//! that can be is in [`crate::logic`]; this file only converts between JS values and Rust.

use crate::logic::{self, BackupOptions, Event, RecoverOptionsJs, RecoverSignal, Start};
use dlocker_sdk::AuthError;
use dlocker_sdk::{DeviceKey, Passkey, PasskeyFuture, RecoveryHandle, StateKey, TrusteeSet};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use tokio::sync::watch;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use zeroize::Zeroizing;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface Passkey {
  create(optionsJson: string): Promise<string>;
  get(optionsJson: string): Promise<string>;
}
export interface Trustee { name: string; endpoint: string; nodeId: string; role: string }
export interface BackupOptions { threshold: number; recoveryDelaySecs: number; userName: string }
export interface Receipt { trustee: string; nodeId: string; shareIndex: number; receipt: string }
export interface BackupResult {
  walletId: string; epoch: number; manifestHash: string; manifest: string; receipts: Receipt[];
}
export interface TrusteeHealth {
  trustee: string; nodeId: string; shareIndex: number; epoch: number; healthy: boolean;
  detail: string;
}
export interface RecoverOptions { pollIntervalMs?: number; approvalTimeoutSecs?: number }
export interface TrusteeReason { trustee: string; reason: string; refusal?: string }
export interface RecoverResult {
  secret: Uint8Array; walletId: string; manifestHash: string; used: string[];
  faulty: TrusteeReason[]; unavailable: TrusteeReason[];
}
export interface CancelOutcome { trustee: string; cancelled: boolean; error: string }
export type DlockerEvent = { type: string; [field: string]: unknown };
export interface WalletKey { walletKey: string; publicKey: string }
export interface LockerDocument {
  uri: string; issuerId: string; issuerName: string; docType: string; source: string;
  state: string; credentialId: string; verified: boolean; status: string; boundTo: string;
  validUntil?: number; claims: Record<string, string>; problems: string[];
}
export interface ReissueResult extends WalletKey {
  reissued: LockerDocument[]; awaitingIssuer: string[]; revoked: number;
  consentsCarriedOver: number;
}
"#;

/// The SDK's version and protocol version.
#[wasm_bindgen]
pub fn version() -> String {
    crate::version_string()
}

/// The page's passkey object: `create` / `get` take and return WebAuthn JSON (promises).
struct JsPasskey {
    obj: JsValue,
}

/// `name: message` of a thrown JS value (a DOMException such as `NotAllowedError`, an `Error`,
/// a string), for an error line.
fn js_message(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    let field = |k: &str| {
        Reflect::get(e, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    match (field("name"), field("message")) {
        (n, m) if n.is_empty() && m.is_empty() => "unknown error".to_owned(),
        (n, m) if n.is_empty() => m,
        (n, m) if m.is_empty() => n,
        (n, m) => format!("{n}: {m}"),
    }
}

async fn call_passkey(
    obj: JsValue,
    method: &'static str,
    arg: String,
) -> Result<String, AuthError> {
    let fail = |why: String| AuthError::Authenticator(format!("passkey.{method}: {why}"));
    let f: Function = Reflect::get(&obj, &JsValue::from_str(method))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| fail("not a function".to_owned()))?;
    let ret = f
        .call1(&obj, &JsValue::from_str(&arg))
        .map_err(|e| fail(js_message(&e)))?;
    // `Promise.resolve` accepts a value, a promise or any thenable.
    let value = JsFuture::from(Promise::resolve(&ret))
        .await
        .map_err(|e| fail(js_message(&e)))?;
    value
        .as_string()
        .ok_or_else(|| fail("did not resolve to a JSON string".to_owned()))
}

impl Passkey for JsPasskey {
    fn create(&mut self, options_json: String) -> PasskeyFuture<'_> {
        Box::pin(call_passkey(self.obj.clone(), "create", options_json))
    }

    fn get(&mut self, options_json: String) -> PasskeyFuture<'_> {
        Box::pin(call_passkey(self.obj.clone(), "get", options_json))
    }
}

/// A recovery this client runs: its cancel switch and, once the sessions are open, its handle.
struct Running {
    handle: Option<RecoveryHandle>,
    stop: watch::Sender<bool>,
}

struct Inner {
    trustees: TrusteeSet,
    passkey: JsValue,
    recovery: RefCell<Option<Running>>,
    /// The last recovery's wallet and new device key (for `reissueDocuments`).
    recovered: RefCell<Option<(String, DeviceKey)>>,
}

impl Inner {
    fn passkey(&self) -> JsPasskey {
        JsPasskey {
            obj: self.passkey.clone(),
        }
    }
}

fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsValue> {
    // json_compatible: u64 as numbers (seconds, epochs) and structs as plain objects.
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(&format!("internal: {e}")))
}

fn js_error(msg: &str) -> JsValue {
    js_sys::Error::new(msg).into()
}

/// Calls the page's progress function; a throwing handler does not stop the ceremony.
fn emit(f: &Option<Function>, e: &Event) {
    if let (Some(f), Ok(v)) = (f, to_js(e)) {
        let _ = f.call1(&JsValue::NULL, &v);
    }
}

/// A dLocker client in the page: the bank's trustees and the owner's passkey.
#[wasm_bindgen]
pub struct DlockerClient {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl DlockerClient {
    /// `trusteesToml`: the bank's trustees file; `passkey`: `{ create, get }` (see `API.md`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = trusteesToml)] trustees_toml: &str,
        #[wasm_bindgen(unchecked_param_type = "Passkey")] passkey: JsValue,
    ) -> Result<DlockerClient, JsValue> {
        let trustees = logic::trustees(trustees_toml).map_err(|e| js_error(&e.0))?;
        if !passkey.is_object() {
            return Err(js_error(
                "passkey must be an object with create() and get() functions",
            ));
        }
        Ok(Self {
            inner: Rc::new(Inner {
                trustees,
                passkey,
                recovery: RefCell::new(None),
                recovered: RefCell::new(None),
            }),
        })
    }

    /// The trustees, in file order.
    #[wasm_bindgen(unchecked_return_type = "Trustee[]")]
    pub fn trustees(&self) -> Result<JsValue, JsValue> {
        to_js(&logic::trustee_views(&self.inner.trustees))
    }

    /// Backs `secret` up at every trustee with one passkey touch.
    #[wasm_bindgen(unchecked_return_type = "Promise<BackupResult>")]
    pub fn backup(
        &self,
        #[wasm_bindgen(js_name = walletId)] wallet_id: String,
        secret: Uint8Array,
        #[wasm_bindgen(unchecked_param_type = "BackupOptions")] options: JsValue,
        #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "((e: DlockerEvent) => void) | undefined")]
        on_progress: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        let secret = Zeroizing::new(secret.to_vec());
        future_to_promise(async move {
            let opts: BackupOptions = serde_wasm_bindgen::from_value(options)
                .map_err(|e| js_error(&format!("backup options: {e}")))?;
            let mut passkey = inner.passkey();
            let res = logic::backup(
                &inner.trustees,
                &wallet_id,
                secret,
                &opts,
                &mut passkey,
                |e| emit(&on_progress, &e),
            )
            .await
            .map_err(|e| js_error(&e.0))?;
            to_js(&res)
        })
    }

    /// Every trustee proves it still holds its share of `manifest` (from `backup`).
    #[wasm_bindgen(js_name = verifyBackup, unchecked_return_type = "Promise<TrusteeHealth[]>")]
    pub fn verify_backup(
        &self,
        manifest: String,
        #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "((e: DlockerEvent) => void) | undefined")]
        on_progress: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let res = logic::verify(&inner.trustees, &manifest, |e| emit(&on_progress, &e))
                .await
                .map_err(|e| js_error(&e.0))?;
            to_js(&res)
        })
    }

    /// Recovers the wallet: one passkey touch, the bank's approval, the waiting period. With
    /// `stateKey` (32 bytes from the page's keystore), a `checkpoint` event hands the page the
    /// recovery's sealed state after each step, for `resumeRecovery` after a reload.
    #[wasm_bindgen(unchecked_return_type = "Promise<RecoverResult>")]
    pub fn recover(
        &self,
        #[wasm_bindgen(js_name = walletId)] wallet_id: String,
        #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "((e: DlockerEvent) => void) | undefined")]
        on_progress: Option<Function>,
        #[wasm_bindgen(unchecked_param_type = "RecoverOptions | undefined")] options: JsValue,
        #[wasm_bindgen(js_name = stateKey)] state_key: Option<Uint8Array>,
    ) -> Promise {
        let key = match state_key.map(|k| logic::state_key(&Zeroizing::new(k.to_vec()))) {
            Some(Err(e)) => return Promise::reject(&js_error(&e.0)),
            Some(Ok(k)) => Some(k),
            None => None,
        };
        self.run_recovery(wallet_id, None, key, on_progress, options)
    }

    /// Resumes a recovery from the last `checkpoint` event's `state` and the same `stateKey`:
    /// where the trustees are, without a new bank approval or a new waiting period (a passkey
    /// touch only if fewer than t trustees had accepted it). Resolves like `recover()`.
    #[wasm_bindgen(js_name = resumeRecovery, unchecked_return_type = "Promise<RecoverResult>")]
    pub fn resume_recovery(
        &self,
        state: String,
        #[wasm_bindgen(js_name = stateKey)] state_key: Uint8Array,
        #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "((e: DlockerEvent) => void) | undefined")]
        on_progress: Option<Function>,
        #[wasm_bindgen(unchecked_param_type = "RecoverOptions | undefined")] options: JsValue,
    ) -> Promise {
        let key = match logic::state_key(&Zeroizing::new(state_key.to_vec())) {
            Ok(k) => k,
            Err(e) => return Promise::reject(&js_error(&e.0)),
        };
        let saved = match logic::saved_state(&state) {
            Ok(s) => s,
            Err(e) => return Promise::reject(&js_error(&e.0)),
        };
        // Known before any trustee is asked: the handle `cancelRecovery` needs.
        let handle = match logic::saved_handle(&saved, &key) {
            Ok(h) => h,
            Err(e) => return Promise::reject(&js_error(&e.0)),
        };
        let wallet_id = handle.wallet_id.clone();
        self.run_recovery(
            wallet_id,
            Some((saved, handle)),
            Some(key),
            on_progress,
            options,
        )
    }
    /// Cancels the recovery in progress at every trustee (one passkey touch); its `recover()`
    /// promise then rejects with "recovery cancelled".
    #[wasm_bindgen(js_name = cancelRecovery, unchecked_return_type = "Promise<CancelOutcome[]>")]
    pub fn cancel_recovery(&self) -> Promise {
        let inner = self.inner.clone();
        let handle = inner
            .recovery
            .borrow()
            .as_ref()
            .and_then(|r| r.handle.clone());
        future_to_promise(async move {
            let Some(handle) = handle else {
                return Err(js_error(
                    "no recovery to cancel: none in progress, or its sessions are not open yet",
                ));
            };
            let mut passkey = inner.passkey();
            let out = logic::cancel(&inner.trustees, &handle, &mut passkey)
                .await
                .map_err(|e| js_error(&e.0))?;
            if let Some(r) = inner.recovery.borrow().as_ref() {
                // Stops the waiting `recover()`; a recovery that already ended ignores it.
                let _ = r.stop.send(true);
            }
            to_js(&out)
        })
    }

    /// Binds a new wallet key to the wallet's documents at the bank's locker (one passkey
    /// touch). Keep `walletKey` where the wallet keeps its keys.
    #[wasm_bindgen(js_name = linkDocuments, unchecked_return_type = "Promise<WalletKey>")]
    pub fn link_documents(&self, #[wasm_bindgen(js_name = walletId)] wallet_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut passkey = inner.passkey();
            let key = logic::link_documents(&inner.trustees, &wallet_id, &mut passkey)
                .await
                .map_err(|e| js_error(&e.0))?;
            to_js(&key)
        })
    }

    /// The wallet's documents at the bank's locker, each credential verified.
    #[wasm_bindgen(js_name = listDocuments, unchecked_return_type = "Promise<LockerDocument[]>")]
    pub fn list_documents(
        &self,
        #[wasm_bindgen(js_name = walletId)] wallet_id: String,
        #[wasm_bindgen(js_name = walletKey)] wallet_key: String,
    ) -> Promise {
        let inner = self.inner.clone();
        let wallet_key = Zeroizing::new(wallet_key);
        future_to_promise(async move {
            let key = logic::wallet_key(&wallet_key).map_err(|e| js_error(&e.0))?;
            let docs = logic::list_documents(&inner.trustees, &wallet_id, &key)
                .await
                .map_err(|e| js_error(&e.0))?;
            to_js(&docs)
        })
    }

    /// After `recover()`: every document re-issued to this device's new wallet key, with the
    /// recovery's own bank approval and one passkey touch.
    #[wasm_bindgen(js_name = reissueDocuments, unchecked_return_type = "Promise<ReissueResult>")]
    pub fn reissue_documents(&self) -> Promise {
        let inner = self.inner.clone();
        let recovered = inner.recovered.borrow().clone();
        future_to_promise(async move {
            let Some((wallet_id, device)) = recovered else {
                return Err(js_error(
                    "no recovered wallet in this page: recover it first",
                ));
            };
            let mut passkey = inner.passkey();
            let out = logic::reissue_documents(&inner.trustees, &wallet_id, &device, &mut passkey)
                .await
                .map_err(|e| js_error(&e.0))?;
            to_js(&out)
        })
    }
}

impl DlockerClient {
    /// `recover()` and `resumeRecovery()`: one recovery at a time per client, its cancel switch
    /// and handle kept for `cancelRecovery()`, its device key for `reissueDocuments()`.
    fn run_recovery(
        &self,
        wallet_id: String,
        resume: Option<(Vec<u8>, RecoveryHandle)>,
        key: Option<StateKey>,
        on_progress: Option<Function>,
        options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        let opts: Result<RecoverOptionsJs, JsValue> = if options.is_undefined() || options.is_null()
        {
            Ok(RecoverOptionsJs::default())
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| js_error(&format!("recover options: {e}")))
        };
        let (stop, stopped) = watch::channel(false);
        let busy = {
            let mut slot = inner.recovery.borrow_mut();
            if slot.is_some() {
                true
            } else {
                *slot = Some(Running {
                    handle: resume.as_ref().map(|(_, h)| h.clone()),
                    stop,
                });
                false
            }
        };
        future_to_promise(async move {
            if busy {
                return Err(js_error("a recovery is already in progress in this client"));
            }
            let start = match (&resume, &key) {
                (Some((saved, _)), Some(key)) => Start::Resume { saved, key },
                _ => Start::New {
                    wallet_id: &wallet_id,
                    state_key: key.as_ref(),
                },
            };
            let res =
                match opts {
                    Ok(opts) => {
                        let mut passkey = inner.passkey();
                        logic::recover(&inner.trustees, start, &opts, &mut passkey, stopped, |s| {
                            match s {
                                RecoverSignal::Handle(h) => {
                                    if let Some(r) = inner.recovery.borrow_mut().as_mut() {
                                        r.handle = Some(h);
                                    }
                                }
                                RecoverSignal::Event(e) => emit(&on_progress, &e),
                            }
                        })
                        .await
                        .map_err(|e| js_error(&e.0))
                    }
                    Err(e) => Err(e),
                };
            inner.recovery.borrow_mut().take();
            let wallet = res?;
            *inner.recovered.borrow_mut() =
                Some((wallet.summary.wallet_id.clone(), wallet.device.clone()));
            let out = to_js(&wallet.summary)?;
            let secret = Uint8Array::from(wallet.secret.as_slice());
            Reflect::set(&out, &JsValue::from_str("secret"), &secret)?;
            Ok(out)
        })
    }
}

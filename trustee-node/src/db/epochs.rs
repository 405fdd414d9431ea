//! Epoch records: the staged epoch's codec and the retirement receipts. Layout: [`crate::db`].

use super::{Database, STAGED_TREE, StoreError, Table, corrupt, wallet_key};
use crate::epochs::state::EpochState;
use dlocker_proto::codec::{Reader, Writer};

const STAGED_RECORD_VERSION: u8 = 1;
/// Bounds when decoding a stored staged record (it was bounded on the way in).
const MAX_STORED_BLOB: usize = 64 * 1024 * 1024;
const MAX_STORED_PASSKEY: usize = 256 * 1024;

/// The staged epoch's data, as stored.
#[derive(Clone)]
pub struct StagedRecord {
    /// The share sealed at rest.
    pub sealed_share: Vec<u8>,
    /// The staged manifest (canonical encoding).
    pub manifest: Vec<u8>,
    /// The encrypted blob.
    pub blob: Vec<u8>,
    /// The signed stage receipt.
    pub stage_receipt: Vec<u8>,
    /// A joining node's passkey (JSON); `None` when the wallet's active passkey applies.
    pub passkey_json: Option<Vec<u8>>,
}

impl std::fmt::Debug for StagedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedRecord").finish_non_exhaustive()
    }
}

impl StagedRecord {
    /// The stored form: version 1, then length-prefixed fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(STAGED_RECORD_VERSION)
            .bytes(&self.sealed_share)
            .bytes(&self.manifest)
            .bytes(&self.blob)
            .bytes(&self.stage_receipt);
        match &self.passkey_json {
            None => w.u8(0),
            Some(p) => w.u8(1).bytes(p),
        };
        w.finish()
    }

    /// Decodes [`StagedRecord::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = |e: dlocker_proto::DecodeError| corrupt(STAGED_TREE, e);
        let mut r = Reader::new(bytes);
        if r.u8().map_err(bad)? != STAGED_RECORD_VERSION {
            return Err(corrupt(STAGED_TREE, "record version"));
        }
        let sealed_share = r.bytes("sealed share", 256).map_err(bad)?.to_vec();
        let manifest = r.bytes("manifest", 64 * 1024).map_err(bad)?.to_vec();
        let blob = r.bytes("blob", MAX_STORED_BLOB).map_err(bad)?.to_vec();
        let stage_receipt = r.bytes("stage receipt", 16 * 1024).map_err(bad)?.to_vec();
        let passkey_json = match r.u8().map_err(bad)? {
            0 => None,
            1 => Some(
                r.bytes("passkey", MAX_STORED_PASSKEY)
                    .map_err(bad)?
                    .to_vec(),
            ),
            _ => return Err(corrupt(STAGED_TREE, "passkey flag")),
        };
        r.finish().map_err(bad)?;
        Ok(Self {
            sealed_share,
            manifest,
            blob,
            stage_receipt,
            passkey_json,
        })
    }
}

impl Database {
    /// The wallet's staged epoch record, if any.
    pub fn staged(&self, wallet_id: &str) -> Result<Option<StagedRecord>, StoreError> {
        self.t(Table::Staged)
            .get(wallet_key(wallet_id))?
            .map(|v| StagedRecord::decode(&v))
            .transpose()
    }

    /// The retirement receipt stored under the wallet's tag.
    pub fn retired(&self, wallet_tag: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.t(Table::Retired).get(wallet_tag.as_bytes())?)
    }

    /// Wallets whose persisted epoch state has a staged epoch expired at `now`, in no stated
    /// order (unreadable states are left to the requests that touch them).
    pub fn wallets_with_expired_staging(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let mut due = Vec::new();
        for (k, v) in self.t(Table::Epochs).entries()? {
            let expired = serde_json::from_slice::<EpochState>(&v)
                .ok()
                .and_then(|s| s.staged().map(|x| x.is_expired(now)))
                .unwrap_or(false);
            if expired && let Ok(w) = String::from_utf8(k) {
                due.push(w);
            }
        }
        Ok(due)
    }
}

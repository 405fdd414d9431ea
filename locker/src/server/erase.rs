//! Erasing a holder: the wallet's owner deleted the wallet and asked for its documents to go too.
//!
//! The host (the trustee node's `DeleteWallet`) has already checked the owner's one touch, which
//! covers this choice. Under the locker's write lock ([`Locker::lock_for_erase`]), ONE batch:
//!
//! * revokes every credential issued to the holder — each document's current status entry and
//!   every pending draft's — so a copy presented elsewhere stops verifying (as a re-issue does);
//! * removes the holder record, its documents (uploads included) and their `uri/` entries, its
//!   consents and their index, its drafts, and the issuer tasks made for it.
//!
//! Then one audit entry `holder_erased` (the holder named by the host's keyed tag) and a flush,
//! before the host answers. A holder that is not there is no error (`None`): a retried delete
//! erases nothing twice. Status lists, allocation bits and spent request nonces stay: they name
//! no holder.

use super::error::LockerError;
use super::store::{ConsentRecord, DocRecord, DraftRecord, HolderRecord, TaskRecord, keys};
use super::{Locker, Tx};
use dlocker_store::SharedMutexGuard;

/// Records read per page while scanning drafts and tasks.
const PAGE: usize = 256;

/// The locker's write lock, held for an erase. The host takes it BEFORE its own locks, as every
/// locker call that asks the host for the owner's touch does.
pub struct EraseGuard<'a> {
    locker: &'a Locker,
    _write: SharedMutexGuard<'a>,
}

impl std::fmt::Debug for EraseGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EraseGuard").finish_non_exhaustive()
    }
}

/// What [`EraseGuard::erase_holder`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HolderErased {
    /// Documents (uploads included).
    pub documents: usize,
    /// Credentials revoked in their status lists (documents' and pending drafts').
    pub revoked: usize,
    /// Consents.
    pub consents: usize,
    /// Pending drafts and issuer tasks.
    pub drafts_and_tasks: usize,
}

impl Locker {
    /// Takes the write lock for [`EraseGuard::erase_holder`].
    pub async fn lock_for_erase(&self) -> Result<EraseGuard<'_>, LockerError> {
        Ok(EraseGuard {
            locker: self,
            _write: self.write.lock().await?,
        })
    }

    /// Every record under `prefix`, page by page (drafts and tasks are not indexed by holder).
    fn scan_all<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, LockerError> {
        let end = dlocker_store::prefix_end(prefix);
        let mut out = Vec::new();
        let mut start = prefix.to_vec();
        loop {
            let page = self.store.tree.range(Some(&start), end.as_deref(), PAGE)?;
            let full = page.len() == PAGE;
            for (k, v) in page {
                let rec =
                    serde_json::from_slice(&v).map_err(|e| LockerError::corrupt("record", e))?;
                start = [k.as_slice(), &[0]].concat();
                out.push((k, rec));
            }
            if !full {
                return Ok(out);
            }
        }
    }
}

impl EraseGuard<'_> {
    /// Erases `holder` and everything issued to it (the module docs list it), durably, and
    /// releases the lock. `None` when the locker has no such holder.
    pub async fn erase_holder(self, holder: &str) -> Result<Option<HolderErased>, LockerError> {
        let l = self.locker;
        l.check_holder_id(holder)?;
        if l.store
            .get::<HolderRecord>(&keys::holder(holder))?
            .is_none()
        {
            return Ok(None);
        }
        let now = l.now();
        let mut tx = Tx::new(&l.store);
        let mut n = HolderErased::default();
        // Each (issuer, list, index) once: a document awaiting its issuer shares its entry with
        // the pending draft.
        let mut revoke = std::collections::BTreeSet::new();
        for (key, d) in l.scan_all::<DocRecord>(&keys::docs_of(holder))? {
            // Uploads have no status entry. An entry awaiting its issuer is revoked all the same
            // (its task goes below), so nothing signed for it later can verify.
            if let Some((list, index)) = d.status {
                revoke.insert((d.issuer_id.clone(), list, index));
            }
            tx.remove(keys::uri(&d.uri));
            tx.remove(key);
            n.documents += 1;
        }
        for (key, d) in l.scan_all::<DraftRecord>(keys::DRAFTS)? {
            if d.holder_id == holder {
                // The issuer may have signed it already and kept a copy.
                revoke.insert((d.issuer_id.clone(), d.list, d.index));
                tx.remove(key);
                n.drafts_and_tasks += 1;
            }
        }
        for (issuer, list, index) in &revoke {
            l.revoke_status(&mut tx, issuer, *list, *index)?;
        }
        n.revoked = revoke.len();
        for (key, t) in l.scan_all::<TaskRecord>(keys::TASKS)? {
            if t.holder_id == holder {
                tx.remove(key);
                n.drafts_and_tasks += 1;
            }
        }
        let index = keys::consents_of(holder);
        for (key, _) in l.store.tree.scan_prefix(&index)? {
            let id = String::from_utf8(key[index.len()..].to_vec())
                .map_err(|e| LockerError::corrupt("consent index", e))?;
            if tx.get::<ConsentRecord>(&keys::consent(&id))?.is_some() {
                tx.remove(keys::consent(&id));
                n.consents += 1;
            }
            tx.remove(key);
        }
        tx.remove(keys::holder(holder));
        tx.commit()?;
        l.audit(
            now,
            "holder_erased",
            Some(holder),
            &format!(
                "erased by its owner with the wallet: documents={} revoked={} consents={} \
                 drafts_and_tasks={}",
                n.documents, n.revoked, n.consents, n.drafts_and_tasks
            ),
        )?;
        l.durable().await?;
        tracing::info!(
            documents = n.documents,
            revoked = n.revoked,
            "document locker holder erased by its owner"
        );
        Ok(Some(n))
    }
}

//! The per-wallet epoch state: an explicit, persisted state machine.
//!
//! ```text
//!                 stage (e+1, previous = hash(e))            commit (owner)
//!   Active{e} ─────────────────────────────────▶ Staged{e, e+1} ──────────────▶ Active{e+1}
//!       ▲                                           │    (e's share erased in the commit)
//!       └───────────── abandon (owner) / expiry ────┘
//!
//!   (nothing) ── stage (registration) ──▶ Joining{e+1} ── commit ──▶ Active{e+1}
//!       ▲                                    │
//!       └────────── abandon / expiry ────────┘
//!
//!   Active{e} ── retire (owner, successor committed at its threshold) ──▶ (nothing; all erased)
//! ```
//!
//! A node holds at most one active and one staged epoch per wallet. Transitions are pure
//! functions of `(state, event, now)` returning the next state or an [`EpochError`] naming the
//! rule that refused; the node ([`crate::epochs`]) persists the result together with the data
//! it moves, in one database transaction. Expiry is a transition too ([`EpochState::expire`]): a
//! staged
//! epoch past `expires_at` is treated as gone by every other transition, and the sweeper (or the
//! next request for the wallet) erases it.
//!
//! Wallets enrolled by `FinishEnrollment` have no persisted state; [`EpochState::active_from_meta`]
//! derives `Active` from what enrollment stored. Whatever the state says, the active epoch's data
//! lives in the enrollment trees ([`crate::storage`]), so recovery and proofs read one place.

use serde::{Deserialize, Serialize};

/// Which owner-authorised epoch action a passkey challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochAction {
    /// Stage a successor epoch.
    Stage,
    /// Commit the staged epoch.
    Commit,
    /// Drop the staged epoch.
    Abandon,
    /// Leave the wallet's trustee set.
    Retire,
    /// Erase the wallet at its owner's request (not a transition: the end of the wallet here).
    Delete,
    /// Replace the wallet's passkey credential (not a transition).
    ChangePasskey,
    /// Close every open recovery session of the wallet (not a transition).
    CancelAll,
    /// Replace the wallet's credential on the bank's approval and a proof of `k` (not a
    /// transition).
    ResetPasskey,
}

impl EpochAction {
    /// A short name for messages and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stage => "stage",
            Self::Commit => "commit",
            Self::Abandon => "abandon",
            Self::Retire => "retire",
            Self::Delete => "delete",
            Self::ChangePasskey => "change passkey",
            Self::CancelAll => "cancel all recoveries",
            Self::ResetPasskey => "reset passkey",
        }
    }
}

/// The active epoch of a wallet at this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveEpoch {
    /// Epoch number.
    pub epoch: u64,
    /// Manifest hash (hex).
    pub manifest_hash: String,
    /// This node's share index.
    pub share_index: u16,
    /// Unix seconds, when it became active by a commit (`None` for an enrolled epoch).
    pub committed_at: Option<u64>,
    /// Manifest hash (hex) of the epoch whose share the commit erased (`None` when nothing was).
    pub erased: Option<String>,
}

/// A staged (successor) epoch of a wallet at this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedEpoch {
    /// Epoch number.
    pub epoch: u64,
    /// Manifest hash (hex).
    pub manifest_hash: String,
    /// The staged manifest's `previous` (hex).
    pub previous: String,
    /// This node's share index in the staged epoch.
    pub share_index: u16,
    /// Unix seconds.
    pub staged_at: u64,
    /// Unix seconds; from then on the staged epoch is dropped unless committed.
    pub expires_at: u64,
}

impl StagedEpoch {
    /// Past its expiry at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// A wallet's epochs at this node, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EpochState {
    /// Only a staged epoch: this node is new to the wallet and joins at the commit.
    Joining {
        /// The staged epoch.
        staged: StagedEpoch,
    },
    /// One active epoch, nothing staged.
    Active {
        /// The active epoch.
        active: ActiveEpoch,
    },
    /// An active epoch and its staged successor.
    Staged {
        /// The active epoch (recovery and proofs use it until the commit).
        active: ActiveEpoch,
        /// The staged successor.
        staged: StagedEpoch,
    },
}

/// Why an epoch transition was refused. Each rule has its own variant and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    /// The staged manifest is not the active epoch's successor by number.
    #[error("the manifest is for epoch {got}; this node's active epoch is {active}, so only epoch \
        {} can be staged", active + 1)]
    NotNextEpoch {
        /// The active epoch.
        active: u64,
        /// The manifest's epoch.
        got: u64,
    },
    /// The staged manifest's `previous` is not the active manifest.
    #[error("the manifest's previous hash is not this node's active manifest (epoch {active})")]
    PreviousMismatch {
        /// The active epoch.
        active: u64,
    },
    /// A successor epoch (epoch ≥ 2 with a previous hash) is required.
    #[error("a staged epoch must name its previous manifest (epoch ≥ 2)")]
    NoPrevious,
    /// Another staged epoch is waiting.
    #[error(
        "another rotation (epoch {epoch}) is staged here until {expires_at}; abandon it first or \
            wait for it to expire"
    )]
    AlreadyStaged {
        /// Its epoch.
        epoch: u64,
        /// Unix seconds.
        expires_at: u64,
    },
    /// The manifest is already this node's active epoch.
    #[error("epoch {epoch} is already active here (committed)")]
    AlreadyActive {
        /// The epoch.
        epoch: u64,
    },
    /// Nothing staged under this manifest hash.
    #[error("no epoch is staged here under this manifest hash; stage it first")]
    NotStaged,
    /// The staged epoch expired before its commit.
    #[error("the staged epoch {epoch} expired at {expired_at}; stage it again")]
    StagedExpired {
        /// The epoch.
        epoch: u64,
        /// Unix seconds.
        expired_at: u64,
    },
    /// A staged epoch blocks retirement.
    #[error("epoch {epoch} is staged here; abandon it before retiring this node from the wallet")]
    StagedPresent {
        /// The staged epoch.
        epoch: u64,
    },
    /// The epoch was committed: it can no longer be rolled back here.
    #[error(
        "epoch {epoch} is already committed here and cannot be rolled back; resume the rotation \
            instead"
    )]
    AlreadyCommitted {
        /// The epoch.
        epoch: u64,
    },
    /// An owner-authenticated recovery session blocks rotation.
    #[error(
        "an owner-authenticated recovery is in progress for this wallet; rotation waits until it \
            is released, cancelled or expired"
    )]
    RecoveryInProgress,
    /// The owner's passkey assertion is missing.
    #[error(
        "{action} needs the owner's passkey assertion (BeginEpochAction, then this call with the \
            assertion)"
    )]
    OwnerAssertionRequired {
        /// The action.
        action: &'static str,
    },
    /// This node retired from the wallet (its share erased); deposits for it are refused.
    #[error(
        "this node retired from this wallet and erased its share; it accepts no new deposit for it \
            (a trustee rejoins a wallet only through a rotation)"
    )]
    RetiredHere,
    /// A credential other than the wallet's one was offered (a new registration, or a joining
    /// trustee's credential where the node already holds the wallet or staged another one).
    #[error(
        "a wallet has one credential: authorise with the owner's assertion (a node joining the \
            wallet is handed the wallet's credential), not a new one"
    )]
    RegistrationNotAllowed,
    /// A node joining a wallet was not shown, by a trustee it knows, that the handed credential
    /// is the wallet's (a stranger must not make it join under a credential of their own).
    #[error(
        "a trustee joins a wallet only with the wallet's credential attested by a trustee it knows \
            ([epochs] known_trustee_keys) that holds the epoch this one succeeds: {0}"
    )]
    CredentialNotAttested(&'static str),
    /// A passkey change on a node that only holds a staged epoch of the wallet (joining it).
    #[error(
        "this node is joining the wallet through a staged epoch; commit or abandon the rotation \
            before changing the passkey"
    )]
    PasskeyChangeWhileJoining,
    /// Too little evidence that the successor epoch is held by its threshold.
    #[error("only {have} of the {need} trustees needed show that they hold epoch {epoch}; {what}")]
    QuorumNotMet {
        /// The epoch.
        epoch: u64,
        /// Distinct valid statements.
        have: usize,
        /// The manifest's threshold.
        need: usize,
        /// What the caller should send.
        what: &'static str,
    },
    /// A successor manifest that cannot retire this node.
    #[error("successor manifest refused: {0}")]
    Successor(&'static str),
    /// Neither the active nor the staged epoch has this number.
    #[error("this node holds no epoch {epoch} of this wallet (neither active nor staged)")]
    NoSuchEpoch {
        /// The epoch asked for.
        epoch: u64,
    },
    /// The recovery session's epoch was replaced by a commit.
    #[error(
        "this session was for epoch {session_epoch}, which a rotation replaced by epoch {active}; \
            open a new recovery"
    )]
    SessionEpochReplaced {
        /// The session's epoch.
        session_epoch: u64,
        /// The active epoch now.
        active: u64,
    },
}

/// The refusal code of each epoch rule (the one mapping `crate::error` delegates to).
pub fn refusal(e: &EpochError) -> dlocker_proto::refusal::NodeRefusal {
    use dlocker_proto::refusal::NodeRefusal as R;
    match e {
        EpochError::NotNextEpoch { .. } | EpochError::PreviousMismatch { .. } => {
            R::EpochOutOfSequence
        }
        EpochError::NoPrevious => R::EpochNoPrevious,
        EpochError::AlreadyStaged { .. } => R::EpochAlreadyStaged,
        EpochError::AlreadyActive { .. } => R::EpochAlreadyActive,
        EpochError::NotStaged => R::EpochNotStaged,
        EpochError::StagedExpired { .. } => R::EpochStagedExpired,
        EpochError::StagedPresent { .. } => R::EpochStagedPresent,
        EpochError::AlreadyCommitted { .. } => R::EpochAlreadyCommitted,
        EpochError::RecoveryInProgress => R::RecoveryInProgress,
        EpochError::RetiredHere => R::RetiredHere,
        EpochError::PasskeyChangeWhileJoining => R::PasskeyChangeWhileJoining,
        EpochError::QuorumNotMet { .. } => R::QuorumNotMet,
        EpochError::Successor(_) => R::SuccessorRefused,
        EpochError::NoSuchEpoch { .. } => R::NoSuchEpoch,
        EpochError::SessionEpochReplaced { .. } => R::SessionEpochReplaced,
        EpochError::OwnerAssertionRequired { .. } => R::OwnerAssertionRequired,
        EpochError::RegistrationNotAllowed => R::RegistrationNotAllowed,
        EpochError::CredentialNotAttested(_) => R::CredentialNotAttested,
    }
}

impl EpochState {
    /// The state of a wallet that enrollment stored (never rotated).
    pub fn active_from_meta(epoch: u64, manifest_hash: &str, share_index: u16) -> Self {
        Self::Active {
            active: ActiveEpoch {
                epoch,
                manifest_hash: manifest_hash.to_owned(),
                share_index,
                committed_at: None,
                erased: None,
            },
        }
    }

    /// The active epoch, if any.
    pub fn active(&self) -> Option<&ActiveEpoch> {
        match self {
            Self::Active { active } | Self::Staged { active, .. } => Some(active),
            Self::Joining { .. } => None,
        }
    }

    /// The staged epoch, if any (expired or not).
    pub fn staged(&self) -> Option<&StagedEpoch> {
        match self {
            Self::Joining { staged } | Self::Staged { staged, .. } => Some(staged),
            Self::Active { .. } => None,
        }
    }

    /// A name for status reports and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Joining { .. } => "joining",
            Self::Active { .. } => "active",
            Self::Staged { .. } => "staged",
        }
    }

    /// Drops a staged epoch past its expiry: `Staged → Active`, `Joining → nothing`. Returns the
    /// state after expiry and the expired epoch, if one expired.
    pub fn expire(self, now: u64) -> (Option<Self>, Option<StagedEpoch>) {
        match self {
            Self::Staged { active, staged } if staged.is_expired(now) => {
                (Some(Self::Active { active }), Some(staged))
            }
            Self::Joining { staged } if staged.is_expired(now) => (None, Some(staged)),
            other => (Some(other), None),
        }
    }

    /// Phase 1: stages `new` (its manifest's epoch, hash and previous). `current` is the state
    /// after [`EpochState::expire`]. Staging the very epoch already staged refreshes its expiry
    /// (`Ok((state, true))`); anything else staged is [`EpochError::AlreadyStaged`].
    pub fn stage(current: Option<Self>, new: StagedEpoch) -> Result<(Self, bool), EpochError> {
        match current {
            None => Ok((Self::Joining { staged: new }, false)),
            Some(Self::Active { active }) => {
                if active.manifest_hash == new.manifest_hash {
                    return Err(EpochError::AlreadyActive {
                        epoch: active.epoch,
                    });
                }
                if new.epoch != active.epoch.saturating_add(1) {
                    return Err(EpochError::NotNextEpoch {
                        active: active.epoch,
                        got: new.epoch,
                    });
                }
                if new.previous != active.manifest_hash {
                    return Err(EpochError::PreviousMismatch {
                        active: active.epoch,
                    });
                }
                Ok((
                    Self::Staged {
                        active,
                        staged: new,
                    },
                    false,
                ))
            }
            Some(Self::Staged { active, staged }) => {
                if staged.manifest_hash != new.manifest_hash {
                    return Err(EpochError::AlreadyStaged {
                        epoch: staged.epoch,
                        expires_at: staged.expires_at,
                    });
                }
                let staged = StagedEpoch {
                    expires_at: new.expires_at,
                    ..staged
                };
                Ok((Self::Staged { active, staged }, true))
            }
            Some(Self::Joining { staged }) => {
                if staged.manifest_hash != new.manifest_hash {
                    return Err(EpochError::AlreadyStaged {
                        epoch: staged.epoch,
                        expires_at: staged.expires_at,
                    });
                }
                let staged = StagedEpoch {
                    expires_at: new.expires_at,
                    ..staged
                };
                Ok((Self::Joining { staged }, true))
            }
        }
    }

    /// Whether `manifest_hash` is committed here already (the idempotent answer to a retried
    /// commit).
    pub fn is_committed(&self, manifest_hash: &str) -> bool {
        let active = match self {
            Self::Active { active } | Self::Staged { active, .. } => active,
            _ => return false,
        };
        active.manifest_hash == manifest_hash && active.committed_at.is_some()
    }

    /// The staged epoch under `manifest_hash`, still valid at `now`; the reason otherwise.
    pub fn staged_for(&self, manifest_hash: &str, now: u64) -> Result<&StagedEpoch, EpochError> {
        match self.staged() {
            Some(s) if s.manifest_hash == manifest_hash => {
                if s.is_expired(now) {
                    Err(EpochError::StagedExpired {
                        epoch: s.epoch,
                        expired_at: s.expires_at,
                    })
                } else {
                    Ok(s)
                }
            }
            _ => match self.active() {
                Some(a) if a.manifest_hash == manifest_hash => {
                    Err(EpochError::AlreadyActive { epoch: a.epoch })
                }
                _ => Err(EpochError::NotStaged),
            },
        }
    }

    /// Phase 2: the staged epoch under `manifest_hash` becomes active. Returns the new state and
    /// the epoch whose share is to be erased (none for a joining node).
    pub fn commit(
        self,
        manifest_hash: &str,
        now: u64,
    ) -> Result<(Self, Option<ActiveEpoch>), EpochError> {
        let staged = self.staged_for(manifest_hash, now)?.clone();
        let previous = self.active().cloned();
        let active = ActiveEpoch {
            epoch: staged.epoch,
            manifest_hash: staged.manifest_hash,
            share_index: staged.share_index,
            committed_at: Some(now),
            erased: previous.as_ref().map(|p| p.manifest_hash.clone()),
        };
        Ok((Self::Active { active }, previous))
    }

    /// Rollback: drops the staged epoch under `manifest_hash`. `Ok(None)` means nothing is left
    /// for the wallet (a joining node); an epoch already committed cannot be abandoned.
    pub fn abandon(self, manifest_hash: &str) -> Result<Option<Self>, EpochError> {
        match self {
            Self::Staged { active, staged } if staged.manifest_hash == manifest_hash => {
                Ok(Some(Self::Active { active }))
            }
            Self::Joining { staged } if staged.manifest_hash == manifest_hash => Ok(None),
            other => match other.active() {
                Some(a) if a.manifest_hash == manifest_hash => {
                    Err(EpochError::AlreadyCommitted { epoch: a.epoch })
                }
                _ => Err(EpochError::NotStaged),
            },
        }
    }

    /// Leaving the trustee set: only from `Active` (a staged epoch must be abandoned first).
    /// Returns the epoch erased.
    pub fn retire(self) -> Result<ActiveEpoch, EpochError> {
        match self {
            Self::Active { active } => Ok(active),
            Self::Staged { staged, .. } | Self::Joining { staged } => {
                Err(EpochError::StagedPresent {
                    epoch: staged.epoch,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(e: u64, h: &str) -> EpochState {
        EpochState::active_from_meta(e, h, 1)
    }

    fn staged(e: u64, h: &str, prev: &str, expires_at: u64) -> StagedEpoch {
        StagedEpoch {
            epoch: e,
            manifest_hash: h.into(),
            previous: prev.into(),
            share_index: 2,
            staged_at: 10,
            expires_at,
        }
    }

    #[test]
    fn stage_commit_erases_the_previous_epoch() {
        let (s, refreshed) =
            EpochState::stage(Some(active(1, "h1")), staged(2, "h2", "h1", 100)).expect("stage");
        assert!(!refreshed);
        assert_eq!(s.name(), "staged");
        assert_eq!(s.active().map(|a| a.epoch), Some(1));
        // The same stage again refreshes the expiry; another one is refused.
        let (s, refreshed) = EpochState::stage(Some(s), staged(2, "h2", "h1", 200)).expect("again");
        assert!(refreshed);
        assert_eq!(s.staged().map(|x| x.expires_at), Some(200));
        assert_eq!(
            EpochState::stage(Some(s.clone()), staged(2, "other", "h1", 300)).err(),
            Some(EpochError::AlreadyStaged {
                epoch: 2,
                expires_at: 200
            })
        );
        assert_eq!(
            s.clone().commit("other", 50).err(),
            Some(EpochError::NotStaged)
        );
        let (s, erased) = s.commit("h2", 50).expect("commit");
        assert_eq!(erased.map(|e| e.manifest_hash), Some("h1".to_owned()));
        assert!(s.is_committed("h2"));
        let a = s.active().expect("active");
        assert_eq!(
            (a.epoch, a.committed_at, a.erased.as_deref()),
            (2, Some(50), Some("h1"))
        );
        // A committed epoch cannot be rolled back, nor staged again.
        assert_eq!(
            s.clone().abandon("h2").err(),
            Some(EpochError::AlreadyCommitted { epoch: 2 })
        );
        assert_eq!(
            EpochState::stage(Some(s.clone()), staged(2, "h2", "h1", 300)).err(),
            Some(EpochError::AlreadyActive { epoch: 2 })
        );
        assert_eq!(
            s.clone().commit("h2", 60).err(),
            Some(EpochError::AlreadyActive { epoch: 2 })
        );
        assert!(s.retire().is_ok());
    }

    #[test]
    fn stage_checks_epoch_and_previous() {
        assert_eq!(
            EpochState::stage(Some(active(1, "h1")), staged(3, "h3", "h1", 100)).err(),
            Some(EpochError::NotNextEpoch { active: 1, got: 3 })
        );
        assert_eq!(
            EpochState::stage(Some(active(1, "h1")), staged(2, "h2", "hx", 100)).err(),
            Some(EpochError::PreviousMismatch { active: 1 })
        );
    }

    #[test]
    fn joining_node_commits_or_abandons_to_nothing() {
        let (s, _) = EpochState::stage(None, staged(2, "h2", "h1", 100)).expect("stage");
        assert_eq!(s.name(), "joining");
        assert!(s.active().is_none());
        assert_eq!(s.clone().abandon("h2"), Ok(None));
        assert_eq!(
            s.clone().retire().err(),
            Some(EpochError::StagedPresent { epoch: 2 })
        );
        let (s, erased) = s.commit("h2", 50).expect("commit");
        assert!(erased.is_none());
        assert_eq!(s.active().and_then(|a| a.erased.clone()), None);
    }

    #[test]
    fn expiry_drops_only_the_staged_epoch() {
        let (s, _) =
            EpochState::stage(Some(active(1, "h1")), staged(2, "h2", "h1", 100)).expect("stage");
        assert_eq!(
            s.clone().commit("h2", 100).err(),
            Some(EpochError::StagedExpired {
                epoch: 2,
                expired_at: 100
            })
        );
        let (kept, none) = s.clone().expire(99);
        assert_eq!(kept.as_ref().map(EpochState::name), Some("staged"));
        assert!(none.is_none());
        let (after, expired) = s.expire(100);
        assert_eq!(after, Some(active(1, "h1")));
        assert_eq!(expired.map(|x| x.epoch), Some(2));
        let (j, _) = EpochState::stage(None, staged(2, "h2", "h1", 100)).expect("stage");
        assert_eq!(j.expire(100).0, None);
        // Abandoning what is not staged (expired, or never) is reported, not an error to panic on.
        assert_eq!(active(1, "h1").abandon("h2"), Err(EpochError::NotStaged));
    }
}

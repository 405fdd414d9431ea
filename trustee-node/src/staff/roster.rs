//! The bank's staff roster and approval policy: checking a change whole, and its stored form.
//! The requests that change it are [`super::admin`]'s.
//!
//! The config's `[[bank.staff]]` and `bank.approvals_required` seed the roster. From the first
//! change on, the roster stored here is authoritative: a restart loads it and a config reload no
//! longer changes staff or policy (it says so in the log). Every change is checked whole before
//! it is stored: an admin must remain, and the approvers must be able to meet the policy.

use crate::db::{Database, StoreError};
use crate::staff::auth::{StaffMember, StaffRole};
use dlocker_proto::keys::{public_key_from_hex, public_key_hex};
use dlocker_proto::statement::StaffChange;
use serde::{Deserialize, Serialize};

pub use crate::db::STAFF_ROSTER_TREE;
/// Most staff members (as in the config).
pub const MAX_STAFF: usize = 64;
/// Largest `approvals_required` (as in the config).
pub const MAX_APPROVALS_REQUIRED: u32 = 16;

/// The bank's staff and approval policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// Staff members.
    pub staff: Vec<StaffMember>,
    /// Distinct approvals a recovery needs.
    pub approvals_required: u32,
}

/// Why a staff change was refused. Nothing is changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// The id or key is taken.
    #[error("staff {0:?} already exists (each id and each key may appear once)")]
    Duplicate(String),
    /// No such member.
    #[error("no staff member {0:?}")]
    NoSuchStaff(String),
    /// A malformed id.
    #[error("invalid staff id {0:?}: 1–64 characters of A-Z a-z 0-9 . _ @ -")]
    BadId(String),
    /// Unknown or no roles.
    #[error("roles {0:?}: {1}")]
    BadRoles(String, String),
    /// The change would leave no admin.
    #[error("refused: it would leave no staff member with the admin role; add another admin first")]
    LastAdmin,
    /// The policy could never be met.
    #[error(
        "refused: {required} approvals can never be met by {approvers} staff member(s) with the \
            approver role"
    )]
    Unmeetable {
        /// Approvals required.
        required: u32,
        /// Approvers there would be.
        approvers: usize,
    },
    /// Policy out of range, or too many staff.
    #[error("{0}")]
    Limit(String),
}

fn parse_roles(roles: &str) -> Result<Vec<StaffRole>, RosterError> {
    let mut out = Vec::new();
    for r in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let role = crate::config::parse_staff_role(r)
            .map_err(|e| RosterError::BadRoles(roles.to_owned(), e.to_string()))?;
        if !out.contains(&role) {
            out.push(role);
        }
    }
    if out.is_empty() {
        return Err(RosterError::BadRoles(roles.to_owned(), "no role".into()));
    }
    Ok(out)
}

fn count(staff: &[StaffMember], role: StaffRole) -> usize {
    staff.iter().filter(|m| m.roles.contains(&role)).count()
}

/// The roster after `change`, or why it is refused (pure: nothing is stored here).
pub fn apply(current: &Roster, change: &StaffChange) -> Result<Roster, RosterError> {
    let mut next = current.clone();
    let find = |staff: &[StaffMember], id: &str| {
        staff
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| RosterError::NoSuchStaff(id.to_owned()))
    };
    match change {
        StaffChange::List => return Ok(next),
        StaffChange::Add {
            id,
            public_key,
            roles,
        } => {
            if !crate::config::is_valid_staff_id(id) {
                return Err(RosterError::BadId(id.clone()));
            }
            if next
                .staff
                .iter()
                .any(|m| m.id == *id || m.public_key == *public_key)
            {
                return Err(RosterError::Duplicate(id.clone()));
            }
            if next.staff.len() >= MAX_STAFF {
                return Err(RosterError::Limit(format!(
                    "at most {MAX_STAFF} staff members"
                )));
            }
            next.staff.push(StaffMember {
                id: id.clone(),
                public_key: *public_key,
                roles: parse_roles(roles)?,
            });
        }
        StaffChange::Remove { id } => {
            let i = find(&next.staff, id)?;
            next.staff.remove(i);
        }
        StaffChange::SetRoles { id, roles } => {
            let i = find(&next.staff, id)?;
            next.staff[i].roles = parse_roles(roles)?;
        }
        StaffChange::SetPolicy { approvals_required } => {
            if !(1..=MAX_APPROVALS_REQUIRED).contains(approvals_required) {
                return Err(RosterError::Limit(format!(
                    "approvals_required must be 1–{MAX_APPROVALS_REQUIRED}"
                )));
            }
            next.approvals_required = *approvals_required;
        }
    }
    if count(&current.staff, StaffRole::Admin) > 0 && count(&next.staff, StaffRole::Admin) == 0 {
        return Err(RosterError::LastAdmin);
    }
    let approvers = count(&next.staff, StaffRole::Approver);
    if approvers < next.approvals_required as usize {
        return Err(RosterError::Unmeetable {
            required: next.approvals_required,
            approvers,
        });
    }
    Ok(next)
}

/// A one-line description of a change for the audit log (ids and roles; keys by prefix).
pub fn describe(change: &StaffChange) -> String {
    match change {
        StaffChange::List => "list".into(),
        StaffChange::Add {
            id,
            public_key,
            roles,
        } => {
            let hex = public_key_hex(public_key);
            format!("add {id} ({roles}) key {}…", &hex[..16])
        }
        StaffChange::Remove { id } => format!("remove {id}"),
        StaffChange::SetRoles { id, roles } => format!("roles of {id}: {roles}"),
        StaffChange::SetPolicy { approvals_required } => {
            format!("approvals required: {approvals_required}")
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredMember {
    id: String,
    public_key: String,
    roles: Vec<StaffRole>,
}

#[derive(Serialize, Deserialize)]
struct StoredRoster {
    staff: Vec<StoredMember>,
    approvals_required: u32,
}

fn corrupt(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: STAFF_ROSTER_TREE,
        reason: reason.to_string(),
    }
}

/// The managed roster, if staff were ever changed by a staff-admin request.
pub fn load(db: &Database) -> Result<Option<Roster>, StoreError> {
    let Some(stored) = db.roster::<StoredRoster>()? else {
        return Ok(None);
    };
    let staff = stored
        .staff
        .into_iter()
        .map(|m| {
            Ok(StaffMember {
                public_key: public_key_from_hex(&m.public_key).map_err(corrupt)?,
                id: m.id,
                roles: m.roles,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Roster {
        staff,
        approvals_required: stored.approvals_required,
    }))
}

pub(crate) fn store(db: &Database, roster: &Roster) -> Result<(), StoreError> {
    let stored = StoredRoster {
        staff: roster
            .staff
            .iter()
            .map(|m| StoredMember {
                id: m.id.clone(),
                public_key: public_key_hex(&m.public_key),
                roles: m.roles.clone(),
            })
            .collect(),
        approvals_required: roster.approvals_required,
    };
    db.put_roster(&stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;

    fn key() -> k256::PublicKey {
        k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key()
    }

    fn member(id: &str, roles: &[StaffRole]) -> StaffMember {
        StaffMember {
            id: id.into(),
            public_key: key(),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn changes_are_checked_whole() {
        let r = Roster {
            staff: vec![
                member("root", &[StaffRole::Admin]),
                member("alice", &[StaffRole::Approver]),
            ],
            approvals_required: 1,
        };
        let bob = key();
        let added = apply(
            &r,
            &StaffChange::Add {
                id: "bob".into(),
                public_key: bob,
                roles: "approver, canceller".into(),
            },
        )
        .expect("add");
        assert_eq!(
            added.staff[2].roles,
            vec![StaffRole::Approver, StaffRole::Canceller]
        );
        let dup = StaffChange::Add {
            id: "carol".into(),
            public_key: bob,
            roles: "viewer".into(),
        };
        assert!(matches!(
            apply(&added, &dup),
            Err(RosterError::Duplicate(_))
        ));
        let two = apply(
            &added,
            &StaffChange::SetPolicy {
                approvals_required: 2,
            },
        )
        .expect("two approvers exist");
        // Removing an approver under "four eyes" with two approvers: unmeetable.
        assert_eq!(
            apply(&two, &StaffChange::Remove { id: "bob".into() }),
            Err(RosterError::Unmeetable {
                required: 2,
                approvers: 1
            })
        );
        assert!(matches!(
            apply(
                &two,
                &StaffChange::SetPolicy {
                    approvals_required: 3
                }
            ),
            Err(RosterError::Unmeetable { .. })
        ));
        assert_eq!(
            apply(&two, &StaffChange::Remove { id: "root".into() }),
            Err(RosterError::LastAdmin)
        );
        assert_eq!(
            apply(
                &two,
                &StaffChange::SetRoles {
                    id: "root".into(),
                    roles: "viewer".into()
                }
            ),
            Err(RosterError::LastAdmin)
        );
        assert!(matches!(
            apply(
                &two,
                &StaffChange::SetRoles {
                    id: "alice".into(),
                    roles: "boss".into()
                }
            ),
            Err(RosterError::BadRoles(..))
        ));
        assert!(matches!(
            apply(
                &two,
                &StaffChange::Remove {
                    id: "nobody".into()
                }
            ),
            Err(RosterError::NoSuchStaff(_))
        ));
    }

    #[test]
    fn roster_round_trips_through_the_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path()).expect("db");
        assert_eq!(load(&db).expect("load"), None);
        let r = Roster {
            staff: vec![member("root", &[StaffRole::Admin, StaffRole::Approver])],
            approvals_required: 1,
        };
        store(&db, &r).expect("store");
        assert_eq!(load(&db).expect("load"), Some(r));
    }
}

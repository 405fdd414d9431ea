//! The PostgreSQL schema, as ordered migrations. Every table of [`super`]'s layout (and the
//! document locker's) is `k BYTEA PRIMARY KEY, v BYTEA NOT NULL`, with the same keys and values
//! as on sled: values that must be sealed are sealed before they reach the database.
//!
//! A migration is never edited once released: a change of layout is a new version. A node
//! refuses a schema newer than its newest migration.

use dlocker_store::Migration;

/// Every migration, oldest first.
pub const ALL: &[Migration] = &[
    Migration {
        version: 1,
        description: "the node's tables and the document locker's",
        sql: "
CREATE TABLE ceremonies (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE wallets (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE shares (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE manifests (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE passkeys (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE blobs (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE receipts (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE customers (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE node_meta (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE recovery_sessions (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE recovery_by_wallet (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE epochs (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE epoch_staged (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE epoch_retired (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE owner_nonces (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE staff_nonces (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE staff_roster (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE audit (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE events (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
CREATE TABLE locker (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
",
    },
    Migration {
        version: 2,
        description: "backups not yet confirmed complete",
        sql: "
CREATE TABLE unconfirmed_backups (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
",
    },
    Migration {
        version: 3,
        description: "the bank's passkey reset requests",
        sql: "
CREATE TABLE passkey_resets (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
",
    },
];

#[cfg(test)]
mod tests {
    use super::super::Table;

    #[test]
    fn every_table_has_a_sql_table() {
        let sql = super::ALL.iter().map(|m| m.sql).collect::<String>();
        let mut names: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
        names.push(dlocker_locker::server::store::LOCKER_TREE);
        for name in names {
            assert!(
                sql.contains(&format!("CREATE TABLE {name} (")),
                "no migration creates {name}"
            );
        }
    }
}

//! The manifest: the public description of one backup epoch. Every trustee stores it; receipts,
//! releases and proofs refer to it by its hash.
//!
//! Encoding (version 1), all through [`crate::codec`]:
//! `version u8 ‖ wallet_id str ‖ epoch u64 ‖ threshold u16 ‖ trustee count u16 ‖
//!  { share_index u16 ‖ node_id str ‖ public_key [33] }* ‖ commitments (u16 count ‖ [33]*) ‖
//!  bank_node_id str ‖ recovery_delay_secs u64 ‖ blob_hash [32] ‖ created_at u64 ‖
//!  previous flag u8 (0|1) ‖ [previous_manifest_hash [32]]`.
//! Hash: `SHA-256("dlocker/manifest/v1" ‖ encoding)`.

use crate::MAX_TRUSTEES;
use crate::codec::{DecodeError, Reader, Writer};
use crate::keys::{decode_public_key, encode_public_key, node_id};
use crate::labels;
use crate::share::Commitments;
use k256::PublicKey;
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
/// Longest wallet id.
pub const MAX_WALLET_ID_LEN: usize = 64;
/// Longest node id (hex of 16 bytes).
pub const NODE_ID_LEN: usize = 32;

/// A manifest hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManifestHash(pub [u8; 32]);

impl std::fmt::Debug for ManifestHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManifestHash({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for ManifestHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl ManifestHash {
    /// From wire bytes.
    pub fn from_slice(b: &[u8]) -> Result<Self, DecodeError> {
        <[u8; 32]>::try_from(b)
            .map(Self)
            .map_err(|_| DecodeError::Invalid("manifest hash length"))
    }
}

/// Checks a wallet id: 1–64 characters from `[A-Za-z0-9._:-]`.
pub fn validate_wallet_id(id: &str) -> Result<(), DecodeError> {
    if id.is_empty() || id.len() > MAX_WALLET_ID_LEN {
        return Err(DecodeError::Invalid("wallet id length (1–64)"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(DecodeError::Invalid(
            "wallet id characters (A-Z a-z 0-9 . _ : -)",
        ));
    }
    Ok(())
}

/// One trustee of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrusteeEntry {
    /// The index of the share this trustee holds (1-based).
    pub share_index: u16,
    /// The node id, derived from `public_key`.
    pub node_id: String,
    /// The trustee's identity key.
    pub public_key: PublicKey,
}

/// A backup's public description. Only constructed through [`Manifest::new`] or
/// [`Manifest::decode`], both of which validate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    wallet_id: String,
    epoch: u64,
    threshold: u16,
    trustees: Vec<TrusteeEntry>,
    commitments: Commitments,
    bank_node_id: String,
    recovery_delay_secs: u64,
    blob_hash: [u8; 32],
    created_at: u64,
    previous: Option<ManifestHash>,
}

/// Parts of a manifest, for [`Manifest::new`].
#[derive(Debug, Clone)]
pub struct ManifestParts {
    /// Wallet id.
    pub wallet_id: String,
    /// Epoch (1 for the first backup).
    pub epoch: u64,
    /// Threshold `t`.
    pub threshold: u16,
    /// The `n` trustees.
    pub trustees: Vec<TrusteeEntry>,
    /// Feldman commitments (`t` points).
    pub commitments: Commitments,
    /// The bank trustee's node id.
    pub bank_node_id: String,
    /// Waiting period between opening a recovery and releasing shares.
    pub recovery_delay_secs: u64,
    /// SHA-256 of the encrypted blob.
    pub blob_hash: [u8; 32],
    /// Unix seconds.
    pub created_at: u64,
    /// The previous epoch's manifest hash (none for epoch 1).
    pub previous: Option<ManifestHash>,
}

impl Manifest {
    /// Builds and validates a manifest.
    pub fn new(p: ManifestParts) -> Result<Self, DecodeError> {
        let m = Self {
            wallet_id: p.wallet_id,
            epoch: p.epoch,
            threshold: p.threshold,
            trustees: p.trustees,
            commitments: p.commitments,
            bank_node_id: p.bank_node_id,
            recovery_delay_secs: p.recovery_delay_secs,
            blob_hash: p.blob_hash,
            created_at: p.created_at,
            previous: p.previous,
        };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        validate_wallet_id(&self.wallet_id)?;
        let n = self.trustees.len();
        let t = usize::from(self.threshold);
        if n == 0 || n > MAX_TRUSTEES {
            return Err(DecodeError::Invalid("trustee count"));
        }
        if t < crate::share::MIN_THRESHOLD || t > n {
            return Err(DecodeError::Invalid("threshold (2 ≤ t ≤ n)"));
        }
        if self.commitments.threshold() != t {
            return Err(DecodeError::Invalid(
                "commitment count does not equal the threshold",
            ));
        }
        if self.epoch == 0 {
            return Err(DecodeError::Invalid("epoch 0"));
        }
        for (i, e) in self.trustees.iter().enumerate() {
            if e.share_index == 0 || usize::from(e.share_index) > MAX_TRUSTEES {
                return Err(DecodeError::Invalid("share index"));
            }
            if e.node_id != node_id(&e.public_key) {
                return Err(DecodeError::Invalid(
                    "trustee node id does not match its key",
                ));
            }
            for o in &self.trustees[..i] {
                if o.share_index == e.share_index {
                    return Err(DecodeError::Invalid("duplicate share index"));
                }
                if o.node_id == e.node_id {
                    return Err(DecodeError::Invalid("duplicate trustee"));
                }
            }
        }
        if !self.trustees.iter().any(|e| e.node_id == self.bank_node_id) {
            return Err(DecodeError::Invalid("bank node is not among the trustees"));
        }
        Ok(())
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VERSION)
            .str(&self.wallet_id)
            .u64(self.epoch)
            .u16(self.threshold);
        w.u16(self.trustees.len() as u16);
        for e in &self.trustees {
            w.u16(e.share_index)
                .str(&e.node_id)
                .fixed(&encode_public_key(&e.public_key));
        }
        self.commitments.encode_into(&mut w);
        w.str(&self.bank_node_id)
            .u64(self.recovery_delay_secs)
            .fixed(&self.blob_hash)
            .u64(self.created_at);
        match &self.previous {
            None => w.u8(0),
            Some(h) => w.u8(1).fixed(&h.0),
        };
        w.finish()
    }

    /// Strict decoding plus validation.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let wallet_id = r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned();
        let epoch = r.u64()?;
        let threshold = r.u16()?;
        let count = usize::from(r.u16()?);
        if count == 0 || count > MAX_TRUSTEES {
            return Err(DecodeError::Invalid("trustee count"));
        }
        let mut trustees = Vec::with_capacity(count);
        for _ in 0..count {
            let share_index = r.u16()?;
            let node_id = r.str("node id", NODE_ID_LEN)?.to_owned();
            let public_key = decode_public_key(&r.array::<33>()?)?;
            trustees.push(TrusteeEntry {
                share_index,
                node_id,
                public_key,
            });
        }
        let commitments = Commitments::decode_from(&mut r)?;
        let bank_node_id = r.str("bank node id", NODE_ID_LEN)?.to_owned();
        let recovery_delay_secs = r.u64()?;
        let blob_hash = r.array::<32>()?;
        let created_at = r.u64()?;
        let previous = match r.u8()? {
            0 => None,
            1 => Some(ManifestHash(r.array::<32>()?)),
            _ => return Err(DecodeError::Invalid("previous manifest flag")),
        };
        r.finish()?;
        let m = Self {
            wallet_id,
            epoch,
            threshold,
            trustees,
            commitments,
            bank_node_id,
            recovery_delay_secs,
            blob_hash,
            created_at,
            previous,
        };
        m.validate()?;
        Ok(m)
    }

    /// `SHA-256("dlocker/manifest/v1" ‖ encoding)`.
    pub fn hash(&self) -> ManifestHash {
        ManifestHash(
            Sha256::new()
                .chain_update(labels::MANIFEST_HASH)
                .chain_update(self.encode())
                .finalize()
                .into(),
        )
    }

    /// Wallet id.
    pub fn wallet_id(&self) -> &str {
        &self.wallet_id
    }
    /// Epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Threshold `t`.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }
    /// The trustees.
    pub fn trustees(&self) -> &[TrusteeEntry] {
        &self.trustees
    }
    /// The trustee with this node id.
    pub fn trustee(&self, node_id: &str) -> Option<&TrusteeEntry> {
        self.trustees.iter().find(|e| e.node_id == node_id)
    }
    /// The Feldman commitments.
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }
    /// The bank's node id.
    pub fn bank_node_id(&self) -> &str {
        &self.bank_node_id
    }
    /// Waiting period before release, in seconds.
    pub fn recovery_delay_secs(&self) -> u64 {
        self.recovery_delay_secs
    }
    /// SHA-256 of the encrypted blob.
    pub fn blob_hash(&self) -> &[u8; 32] {
        &self.blob_hash
    }
    /// Creation time, Unix seconds.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
    /// Hash of the previous epoch's manifest.
    pub fn previous(&self) -> Option<&ManifestHash> {
        self.previous.as_ref()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::secret::SecretScalar;
    use crate::share::split;
    use k256::SecretKey;
    use k256::elliptic_curve::Generate;

    pub(crate) fn sample(t: u16, n: usize) -> Manifest {
        let (_, commitments) = split(&SecretScalar::random(), usize::from(t), n).expect("split");
        let trustees: Vec<TrusteeEntry> = (1..=n)
            .map(|i| {
                let pk = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
                TrusteeEntry {
                    share_index: i as u16,
                    node_id: node_id(&pk),
                    public_key: pk,
                }
            })
            .collect();
        Manifest::new(ManifestParts {
            wallet_id: "wallet-1".into(),
            epoch: 1,
            threshold: t,
            bank_node_id: trustees[0].node_id.clone(),
            trustees,
            commitments,
            recovery_delay_secs: 60,
            blob_hash: [7; 32],
            created_at: 1_700_000_000,
            previous: None,
        })
        .expect("valid")
    }

    #[test]
    fn round_trip_and_hash() {
        let m = sample(3, 5);
        let enc = m.encode();
        let back = Manifest::decode(&enc).expect("decode");
        assert_eq!(back, m);
        assert_eq!(back.hash(), m.hash());
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(Manifest::decode(&long), Err(DecodeError::TrailingBytes));
        for cut in [1, 10, enc.len() / 2, enc.len() - 1] {
            assert!(Manifest::decode(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn validation() {
        assert!(validate_wallet_id("ok-wallet_1.a:b").is_ok());
        assert!(validate_wallet_id("").is_err());
        assert!(validate_wallet_id("bad wallet").is_err());
        assert!(validate_wallet_id(&"x".repeat(65)).is_err());
        let m = sample(2, 3);
        let mut p = ManifestParts {
            wallet_id: m.wallet_id.clone(),
            epoch: 1,
            threshold: 3,
            trustees: m.trustees.clone(),
            commitments: m.commitments.clone(),
            bank_node_id: m.bank_node_id.clone(),
            recovery_delay_secs: 0,
            blob_hash: [0; 32],
            created_at: 0,
            previous: None,
        };
        assert!(
            Manifest::new(p.clone()).is_err(),
            "threshold must match commitments"
        );
        p.threshold = 2;
        p.bank_node_id = "0".repeat(32);
        assert!(Manifest::new(p.clone()).is_err(), "bank must be a trustee");
        p.bank_node_id = m.bank_node_id.clone();
        p.trustees[1].share_index = 1;
        assert!(Manifest::new(p.clone()).is_err(), "duplicate index");
    }
}

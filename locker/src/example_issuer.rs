//! An example *pull* issuer: a transport department whose registry of driving licences the
//! locker can pull from. The `example-issuer` binary serves it; the integration tests and
//! `dlocker demo` run it. It shows the whole integration an issuer writes: one
//! [`DocumentSource::pull`] function.

use crate::repository::{DocumentSource, PullQuery, PullRefusal};
use crate::vc::Claims;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The document type it issues.
pub const DOC_TYPE: &str = "DRVLC";
/// Its default issuer id.
pub const ISSUER_ID: &str = "example.transport";
/// Its display name.
pub const NAME: &str = "Example Transport Department";

/// One licence: the lookup fields that find it and the claims it yields.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// E.g. `licence_number`, `date_of_birth`.
    pub lookup: BTreeMap<String, String>,
    /// The credential's claims.
    pub claims: BTreeMap<String, String>,
}

/// The registry.
#[derive(Debug, Clone)]
pub struct ExampleIssuer {
    records: Vec<Record>,
}

fn rec(lookup: [(&str, &str); 2], claims: &[(&str, &str)]) -> Record {
    Record {
        lookup: lookup
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        claims: claims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

impl ExampleIssuer {
    /// The built-in sample registry (two licences).
    pub fn sample() -> Self {
        Self {
            records: vec![
                rec(
                    [
                        ("licence_number", "KA01-2020-0001234"),
                        ("date_of_birth", "1990-04-12"),
                    ],
                    &[
                        ("name", "Asha Rao"),
                        ("licenceNumber", "KA01-2020-0001234"),
                        ("dateOfBirth", "1990-04-12"),
                        ("vehicleClasses", "LMV, MCWG"),
                        ("issuingAuthority", "RTO Bengaluru Central"),
                    ],
                ),
                rec(
                    [
                        ("licence_number", "MH12-2018-0098765"),
                        ("date_of_birth", "1985-11-02"),
                    ],
                    &[
                        ("name", "Ravi Kulkarni"),
                        ("licenceNumber", "MH12-2018-0098765"),
                        ("dateOfBirth", "1985-11-02"),
                        ("vehicleClasses", "LMV"),
                        ("issuingAuthority", "RTO Pune"),
                    ],
                ),
            ],
        }
    }

    /// A registry from JSON: `[{"lookup": {…}, "claims": {…}}, …]`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let records: Vec<Record> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for r in &records {
            Claims::new(r.claims.clone()).map_err(|e| e.to_string())?;
        }
        Ok(Self { records })
    }
}

impl DocumentSource for ExampleIssuer {
    async fn pull(&self, q: &PullQuery) -> Result<Claims, PullRefusal> {
        if q.doc_type != DOC_TYPE {
            return Err(PullRefusal::NotFound(format!(
                "this issuer only issues {DOC_TYPE}"
            )));
        }
        // Every lookup field given must match (so a licence number alone is not enough when the
        // record also asks for the date of birth).
        let found = self.records.iter().find(|r| r.lookup == q.lookup);
        match found {
            Some(r) => {
                Claims::new(r.claims.clone()).map_err(|e| PullRefusal::Invalid(e.to_string()))
            }
            None => Err(PullRefusal::NotFound(
                "no licence matches these details".into(),
            )),
        }
    }
}

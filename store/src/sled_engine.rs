//! The sled side of [`crate::Store::transaction`].

use crate::{Error, Tree, TreeInner, Tx, TxAbort, TxError, TxErrorKind, TxInner};
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

/// What a sled transaction aborts with: the caller's reason or a misuse of the API.
enum SledAbort<E> {
    User(E),
    Undeclared(&'static str),
}

pub(crate) fn declared<'t>(
    trees: &'t [TransactionalTree],
    names: &[&'static str],
    name: &'static str,
) -> Result<&'t TransactionalTree, TxError> {
    names
        .iter()
        .position(|n| *n == name)
        .and_then(|i| trees.get(i))
        .ok_or(TxError(TxErrorKind::Undeclared(name)))
}

pub(crate) fn transaction<T, E>(
    trees: &[&Tree],
    f: impl Fn(&mut Tx<'_>) -> Result<T, TxAbort<E>>,
) -> Result<Result<T, E>, Error> {
    let mut engines = Vec::with_capacity(trees.len());
    let mut names = Vec::with_capacity(trees.len());
    for t in trees {
        match &t.inner {
            TreeInner::Sled(s) => engines.push(s),
            // A store hands out trees of its own engine only.
            TreeInner::Pg(_) => return Err(Error::Undeclared(t.name)),
        }
        names.push(t.name);
    }
    if engines.is_empty() {
        return Err(Error::Undeclared("(none)"));
    }
    let result = engines.as_slice().transaction(|txs| {
        let mut tx = Tx {
            inner: TxInner::Sled {
                trees: txs,
                names: &names,
            },
        };
        f(&mut tx).map_err(|e| match e {
            TxAbort::Abort(e) => ConflictableTransactionError::Abort(SledAbort::User(e)),
            TxAbort::Engine(TxError(TxErrorKind::Sled(e))) => e.into(),
            TxAbort::Engine(TxError(TxErrorKind::Undeclared(n))) => {
                ConflictableTransactionError::Abort(SledAbort::Undeclared(n))
            }
            // A postgres error cannot arise inside a sled transaction.
            TxAbort::Engine(TxError(TxErrorKind::Pg(_))) => {
                ConflictableTransactionError::Abort(SledAbort::Undeclared("(postgres)"))
            }
        })
    });
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(TransactionError::Abort(SledAbort::User(e))) => Ok(Err(e)),
        Err(TransactionError::Abort(SledAbort::Undeclared(n))) => Err(Error::Undeclared(n)),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}

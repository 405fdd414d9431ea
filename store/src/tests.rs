//! The same contract checked on both backends. The PostgreSQL half needs a server: it uses
//! `DLOCKER_TEST_POSTGRES_URL` (default: the local trust-auth server) and reports itself skipped
//! when none answers, unless `DLOCKER_REQUIRE_POSTGRES=1` (CI), where that is a failure.

use super::*;
use std::time::Duration;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "two test tables",
    sql: "CREATE TABLE alpha (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);
          CREATE TABLE beta (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);",
}];

fn pg_url() -> String {
    std::env::var("DLOCKER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
}

fn pg_config(schema: &str) -> PgConfig {
    PgConfig {
        url: pg_url(),
        schema: schema.into(),
        pool_size: 8,
        connect_timeout: Duration::from_secs(5),
        tls: PgTls::Off,
    }
}

/// A fresh schema name per test run.
fn fresh_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("store_test_{tag}_{}_{nanos}", std::process::id())
}

fn drop_schema(schema: &str) {
    if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}

/// A PostgreSQL store in a fresh schema, or `None` (skipped, with the reason printed).
fn postgres_store(tag: &str) -> Option<(Store, String)> {
    let schema = fresh_schema(tag);
    match Store::open_postgres(&pg_config(&schema), MIGRATIONS) {
        Ok(s) => Some((s, schema)),
        Err(e) => {
            assert!(
                std::env::var("DLOCKER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL is required (DLOCKER_REQUIRE_POSTGRES=1) but unreachable: {e}"
            );
            eprintln!("skipped: PostgreSQL unreachable at {}: {e}", pg_url());
            None
        }
    }
}

fn on_both(tag: &str, check: impl Fn(&Store)) {
    let sled = Store::sled_temporary().expect("sled");
    check(&sled);
    if let Some((pg, schema)) = postgres_store(tag) {
        check(&pg);
        drop(pg);
        drop_schema(&schema);
    }
}

fn keys(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

#[test]
fn point_operations_and_bytewise_order() {
    on_both("points", |s| {
        let t = s.tree("alpha").expect("tree");
        assert!(t.is_empty().expect("empty"));
        assert!(!t.insert(b"b", b"1").expect("insert"));
        assert!(
            t.insert(b"b", b"2").expect("replace"),
            "replacing reports it"
        );
        for k in [&b"a"[..], b"ab", b"a\xff", b"\xff\x00", b"c"] {
            t.insert(k, k).expect("insert");
        }
        assert_eq!(t.get(b"b").expect("get"), Some(b"2".to_vec()));
        assert!(t.contains_key(b"ab").expect("contains"));
        assert_eq!(t.len().expect("len"), 6);
        assert_eq!(
            keys(&t.entries().expect("entries")),
            vec![
                b"a".to_vec(),
                b"ab".to_vec(),
                b"a\xff".to_vec(),
                b"b".to_vec(),
                b"c".to_vec(),
                b"\xff\x00".to_vec()
            ],
            "bytewise order, 0xff after ASCII"
        );
        assert_eq!(
            keys(&t.scan_prefix(b"a").expect("prefix")),
            vec![b"a".to_vec(), b"ab".to_vec(), b"a\xff".to_vec()]
        );
        assert_eq!(
            keys(&t.range(Some(b"ab"), Some(b"c"), 10).expect("range")),
            vec![b"ab".to_vec(), b"a\xff".to_vec(), b"b".to_vec()]
        );
        assert_eq!(t.range(None, None, 2).expect("limit").len(), 2);
        assert_eq!(t.first().expect("first").map(|e| e.0), Some(b"a".to_vec()));
        assert_eq!(
            t.last().expect("last").map(|e| e.0),
            Some(b"\xff\x00".to_vec())
        );
        assert!(t.remove(b"c").expect("remove"));
        assert!(!t.remove(b"c").expect("remove again"));
        // The other tree is separate.
        assert!(s.tree("beta").expect("beta").is_empty().expect("empty"));
    });
}

#[test]
fn compare_and_swap_in_all_four_forms() {
    on_both("cas", |s| {
        let t = s.tree("alpha").expect("tree");
        assert!(t.compare_and_swap(b"k", None, None).expect("absent"));
        assert!(t.compare_and_swap(b"k", None, Some(b"1")).expect("create"));
        assert!(!t.compare_and_swap(b"k", None, Some(b"x")).expect("exists"));
        assert!(!t.compare_and_swap(b"k", None, None).expect("not absent"));
        assert!(
            !t.compare_and_swap(b"k", Some(b"0"), Some(b"2"))
                .expect("stale")
        );
        assert!(
            t.compare_and_swap(b"k", Some(b"1"), Some(b"2"))
                .expect("swap")
        );
        assert!(
            !t.compare_and_swap(b"k", Some(b"1"), None)
                .expect("stale remove")
        );
        assert_eq!(t.get(b"k").expect("get"), Some(b"2".to_vec()));
        assert!(t.compare_and_swap(b"k", Some(b"2"), None).expect("remove"));
        assert_eq!(t.get(b"k").expect("get"), None);
    });
}

#[test]
fn transactions_are_all_or_nothing() {
    on_both("tx", |s| {
        let (a, b) = (s.tree("alpha").expect("a"), s.tree("beta").expect("b"));
        let done = s
            .transaction(&[&a, &b], |tx| {
                tx.insert(&a, b"k", b"1")?;
                tx.insert(&b, b"k", b"1")?;
                Ok::<_, TxAbort<()>>(())
            })
            .expect("tx");
        assert_eq!(done, Ok(()));
        let refused = s
            .transaction(&[&a, &b], |tx| {
                tx.insert(&a, b"k", b"2")?;
                tx.remove(&b, b"k")?;
                if tx.get(&a, b"k")?.as_deref() == Some(b"2") {
                    return Err(TxAbort::Abort("changed my mind"));
                }
                Ok(())
            })
            .expect("tx");
        assert_eq!(refused, Err("changed my mind"));
        assert_eq!(a.get(b"k").expect("a"), Some(b"1".to_vec()), "rolled back");
        assert_eq!(b.get(b"k").expect("b"), Some(b"1".to_vec()), "rolled back");
        // A tree used without being declared is an error, not a silent write.
        let c = s.tree("beta").expect("beta");
        let misuse = s.transaction(&[&a], |tx| {
            tx.insert(&c, b"x", b"1")?;
            Ok::<_, TxAbort<()>>(())
        });
        assert!(matches!(misuse, Err(Error::Undeclared("beta"))));
        assert_eq!(c.get(b"x").expect("get"), None);
    });
}

#[test]
fn concurrent_read_modify_write_transactions_lose_no_update() {
    on_both("counter", |s| {
        let t = s.tree("alpha").expect("tree");
        let threads = 6u64;
        let rounds = 25u64;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..rounds {
                        s.transaction(&[&t], |tx| {
                            let n = tx
                                .get(&t, b"n")?
                                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                                .map(u64::from_be_bytes)
                                .unwrap_or(0);
                            tx.insert(&t, b"n", &(n + 1).to_be_bytes())?;
                            Ok::<_, TxAbort<()>>(())
                        })
                        .expect("tx")
                        .expect("not aborted");
                    }
                });
            }
        });
        let n = t.get(b"n").expect("get").expect("set");
        assert_eq!(n, (threads * rounds).to_be_bytes().to_vec());
    });
}

#[test]
fn apply_batch_is_atomic_per_tree() {
    on_both("batch", |s| {
        let t = s.tree("alpha").expect("tree");
        t.insert(b"gone", b"x").expect("insert");
        t.apply_batch(&[
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"gone".to_vec(), None),
        ])
        .expect("batch");
        assert_eq!(t.get(b"a").expect("get"), Some(b"1".to_vec()));
        assert_eq!(t.get(b"gone").expect("get"), None);
    });
}

#[test]
fn postgres_writes_survive_reopening_and_a_newer_schema_is_refused() {
    let Some((store, schema)) = postgres_store("reopen") else {
        return;
    };
    store
        .tree("alpha")
        .expect("tree")
        .insert(b"k", b"kept")
        .expect("insert");
    drop(store);
    // Reopening applies nothing new and finds the committed write.
    let again = Store::open_postgres(&pg_config(&schema), MIGRATIONS).expect("reopen");
    assert_eq!(
        again.tree("alpha").expect("tree").get(b"k").expect("get"),
        Some(b"kept".to_vec())
    );
    assert!(matches!(again.tree("gamma"), Err(Error::UnknownTable(_))));
    drop(again);
    // A database migrated by a newer node is refused by this one, with the versions named.
    let newer = [
        MIGRATIONS[0],
        Migration {
            version: 2,
            description: "from the future",
            sql: "CREATE TABLE gamma (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);",
        },
    ];
    Store::open_postgres(&pg_config(&schema), &newer).expect("upgrade");
    let err = Store::open_postgres(&pg_config(&schema), MIGRATIONS).expect_err("older node");
    assert!(
        err.to_string().contains("version 2") && err.to_string().contains("up to 1"),
        "{err}"
    );
    drop_schema(&schema);
}

#[test]
fn bad_settings_are_clear_errors() {
    let err = Store::open_postgres(&pg_config("Robert'); DROP"), MIGRATIONS).expect_err("name");
    assert!(err.to_string().contains("schema name"), "{err}");
    let mut cfg = pg_config("store_test_unreachable");
    cfg.url = "host=127.0.0.1 port=1 user=postgres dbname=test password=hunter2".into();
    cfg.connect_timeout = Duration::from_secs(1);
    let err = Store::open_postgres(&cfg, MIGRATIONS).expect_err("unreachable");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{cfg:?}").contains("hunter2"));
}

#[test]
fn replicas_share_the_serving_lock_and_an_exclusive_holder_is_alone() {
    let Some((first, schema)) = postgres_store("serving") else {
        return;
    };
    assert!(first.hold_serving_lock(false).expect("lock"));
    assert!(
        first.hold_serving_lock(false).expect("again"),
        "held already"
    );
    let second = Store::open_postgres(&pg_config(&schema), MIGRATIONS).expect("open");
    assert!(
        second.hold_serving_lock(false).expect("shared"),
        "replicas share it"
    );
    let tool = Store::open_postgres(&pg_config(&schema), MIGRATIONS).expect("open");
    assert!(
        !tool.hold_serving_lock(true).expect("try"),
        "not while a replica serves"
    );
    drop(first);
    drop(second);
    assert!(
        tool.hold_serving_lock(true).expect("exclusive"),
        "released with the replicas"
    );
    let late = Store::open_postgres(&pg_config(&schema), MIGRATIONS).expect("open");
    assert!(
        !late.hold_serving_lock(false).expect("try"),
        "no replica while the tool holds it"
    );
    drop(tool);
    drop(late);
    drop_schema(&schema);
}

#[test]
fn a_cross_process_lock_lets_one_holder_in_at_a_time() {
    let Some((a, schema)) = postgres_store("xlock") else {
        return;
    };
    let b = Store::open_postgres(&pg_config(&schema), MIGRATIONS).expect("open");
    let mut la = a.cross_process_lock("sessions");
    let mut lb = b.cross_process_lock("sessions");
    la.acquire().expect("a takes it");
    let entered = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let entered = &entered;
        let waiter = s.spawn(move || {
            lb.acquire().expect("b takes it after a");
            entered.store(true, std::sync::atomic::Ordering::SeqCst);
            lb.release();
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !entered.load(std::sync::atomic::Ordering::SeqCst),
            "b entered while a held the lock"
        );
        la.release();
        waiter.join().expect("waiter");
    });
    assert!(entered.load(std::sync::atomic::Ordering::SeqCst));
    // Another name is another lock.
    let mut other = b.cross_process_lock("other");
    la.acquire().expect("again");
    other.acquire().expect("a different name is free");
    other.release();
    la.release();
    drop((a, b));
    drop_schema(&schema);
}

/// The local server's certificate (TLS on, its file readable here) and the name it was issued
/// for, or `None` (skipped, with the reason printed).
fn server_certificate() -> Option<(Vec<u8>, String)> {
    let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).ok()?;
    let setting = |c: &mut postgres::Client, name: &str| -> Option<String> {
        c.query_one(&format!("SHOW {name}"), &[])
            .ok()
            .map(|r| r.get(0))
    };
    if setting(&mut c, "ssl")?.as_str() != "on" {
        eprintln!(
            "skipped: the PostgreSQL server at {} does not serve TLS",
            pg_url()
        );
        return None;
    }
    let file = setting(&mut c, "ssl_cert_file")?;
    let data_dir = setting(&mut c, "data_directory")?;
    let path = std::path::Path::new(&data_dir).join(&file);
    let Ok(pem) = std::fs::read(&path) else {
        eprintln!(
            "skipped: cannot read the server's certificate {}",
            path.display()
        );
        return None;
    };
    // Debian's snakeoil certificate names `localhost` or the host name: the one that verifies.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    ["localhost", hostname.trim()]
        .into_iter()
        .filter(|h| !h.is_empty())
        .find(|h| {
            let (pg, tls) = pg::client_config(
                &with_host(h),
                &PgTls::Verify {
                    ca_pem: pem.clone(),
                },
            )
            .expect("config");
            pg.connect(tls).is_ok()
        })
        .map(|h| (pem.clone(), h.to_owned()))
        .or_else(|| {
            eprintln!("skipped: the server's certificate names neither localhost nor this host");
            None
        })
}

/// The test URL with another host.
fn with_host(host: &str) -> String {
    let url = pg_url();
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("host=") {
                format!("host={host}")
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn tls_verifies_the_server_and_refuses_what_it_cannot_verify() {
    // Without a CA, a connection string that demands TLS is refused, never silently downgraded.
    let demands = format!("{} sslmode=require", pg_url());
    let Err(e) = pg::client_config(&demands, &PgTls::Off) else {
        panic!("sslmode=require without a CA was accepted");
    };
    assert!(
        matches!(e, Error::Tls(_)) && e.to_string().contains("sslmode=require"),
        "{e}"
    );
    let not_pem = PgTls::Verify {
        ca_pem: b"not a PEM".to_vec(),
    };
    let Err(e) = pg::client_config(&pg_url(), &not_pem) else {
        panic!("a CA file without a certificate was accepted");
    };
    assert!(matches!(e, Error::Tls(_)), "{e}");

    let Some((ca_pem, host)) = server_certificate() else {
        return;
    };
    let verified = PgTls::Verify {
        ca_pem: ca_pem.clone(),
    };
    // The connection is TLS, as the server sees it.
    let (pg, tls) = pg::client_config(&with_host(&host), &verified).expect("config");
    let mut c = pg.connect(tls).expect("TLS connection");
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(ssl, "the server does not see a TLS connection");

    // A whole store over TLS.
    let schema = fresh_schema("tls");
    let mut config = pg_config(&schema);
    config.url = with_host(&host);
    config.tls = verified.clone();
    let store = Store::open_postgres(&config, MIGRATIONS).expect("store over TLS");
    let t = store.tree("alpha").expect("tree");
    t.insert(b"k", b"v").expect("insert");
    assert_eq!(t.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
    drop(store);
    drop_schema(&schema);

    // A server the CA did not sign, and a name the certificate does not carry: refused.
    let public_roots = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let mut refused = vec![("127.0.0.1".to_owned(), verified)];
    if !public_roots.is_empty() {
        refused.push((
            host,
            PgTls::Verify {
                ca_pem: public_roots,
            },
        ));
    }
    for (host, tls) in refused {
        let mut config = pg_config(&fresh_schema("tls_refused"));
        config.url = with_host(&host);
        config.tls = tls;
        let e = Store::open_postgres(&config, MIGRATIONS).expect_err("unverifiable server");
        assert!(e.to_string().contains("certificate"), "{host}: {e}");
    }
}

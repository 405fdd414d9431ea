//! The strict codec: a script of reads (taken from the input) over the rest of the input.
//! Whatever was read re-encodes to exactly the bytes consumed, and `finish` succeeds only when
//! everything was consumed.
#![no_main]

use dlocker_proto::codec::{Reader, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32).min(rest.len());
    let (ops, buf) = rest.split_at(n);
    let mut r = Reader::new(buf);
    let mut w = Writer::new();
    for &op in ops {
        let max = [0usize, 1, 16, 64, 4096][usize::from(op / 9) % 5];
        let read = match op % 9 {
            0 => r.u8().map(|v| {
                w.u8(v);
            }),
            1 => r.u16().map(|v| {
                w.u16(v);
            }),
            2 => r.u32().map(|v| {
                w.u32(v);
            }),
            3 => r.u64().map(|v| {
                w.u64(v);
            }),
            4 => r.bytes("f", max).map(|v| {
                assert!(v.len() <= max);
                w.bytes(v);
            }),
            5 => r.str("s", max).map(|v| {
                assert!(v.len() <= max);
                w.str(v);
            }),
            6 => r.array::<33>().map(|v| {
                w.fixed(&v);
            }),
            7 => {
                w.fixed(r.rest());
                Ok(())
            }
            _ => break,
        };
        if read.is_err() {
            return;
        }
    }
    let consumed = w.finish();
    assert_eq!(&buf[..consumed.len()], &consumed[..], "re-encoding differs");
    let all = consumed.len() == buf.len();
    assert_eq!(
        r.finish().is_ok(),
        all,
        "finish disagrees with what was consumed"
    );
});

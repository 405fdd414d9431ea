//! The trustee node's config file (`config.toml` → typed `NodeConfig`, and the comment-keeping
//! editor's parser). The config is operator input, not network input, but a bad file must be
//! refused with a message, never a panic. Needs the `node` feature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use trustee_node::config::NodeConfig;
use trustee_node::config::edit::ConfigDoc;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let dir = Path::new("/fuzz-node");
    if let Ok(cfg) = NodeConfig::from_toml(s, dir) {
        assert_eq!(cfg.data_dir, dir);
        let _ = cfg.recovery.clamp_delay(u64::MAX);
        let _ = cfg.db_path();
    }
    if let Ok(doc) = ConfigDoc::parse(s, dir) {
        // The editor writes back what it read; the typed parser sees the same text.
        let text = doc.to_string();
        assert_eq!(
            NodeConfig::from_toml(&text, dir).is_ok(),
            NodeConfig::from_toml(s, dir).is_ok()
        );
    }
});

//! Engines that share one trail by account (`deploy --engine-shards N`):
//! every shard is told of every delivery and reads those of its accounts,
//! each account's falling to one shard by a stable hash of its id. A
//! shard keeps its own state and baselines, so what looks across accounts
//! (a detector that sums over every account, a correlation of two
//! accounts' calls) sees only that shard's; the OpenSearch anomaly
//! detectors stay the view across all of them.

/// One shard of `count`: `index` is 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The most shards a stack runs.
pub const MAX_SHARDS: u32 = 16;

impl Shard {
    /// `K/N`: shard K (from 0) of N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad =
            || format!("{text:?}: write K/N, shard K (0 to N-1) of N shards (1 to {MAX_SHARDS})");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// This shard reads the delivery at `key`: its account's shard, or
    /// shard 0 for a key that names no account (nothing goes unread).
    pub fn owns(&self, key: &str) -> bool {
        match account_of_key(key) {
            Some(account) => shard_of(account, self.count) == self.index,
            None => self.index == 0,
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The account a delivery's key names: `AWSLogs/<account>/…` or, for an
/// organisation trail, `AWSLogs/<org-id>/<account>/…` (under any prefix).
pub fn account_of_key(key: &str) -> Option<&str> {
    let rest = &key[key.find("AWSLogs/")? + "AWSLogs/".len()..];
    let mut parts = rest.split('/');
    let first = parts.next()?;
    let account = if first.starts_with("o-") {
        parts.next()?
    } else {
        first
    };
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// The shard of `account` among `count`: FNV-1a of its id, its bits
/// mixed (FNV's low bits follow the digits' parity alone), so every engine
/// and every run agrees and ids alike spread.
pub fn shard_of(account: &str, count: u32) -> u32 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in account.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % count.max(1) as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_falls_to_the_shard_of_its_account() {
        let plain = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/05/111122223333_CloudTrail_us-east-1_20260105T1005Z_a.json.gz";
        let org = "logs/AWSLogs/o-abc123/444455556666/CloudTrail/eu-west-1/2026/01/05/x.json.gz";
        assert_eq!(account_of_key(plain), Some("111122223333"));
        assert_eq!(account_of_key(org), Some("444455556666"));
        assert_eq!(account_of_key("AWSLogs/o-abc123/x/y"), None);
        assert_eq!(account_of_key("other/key.json.gz"), None);
        // Each key is read by exactly one shard of two, and these two
        // accounts fall apart.
        let shards = [Shard::parse("0/2").unwrap(), Shard::parse("1/2").unwrap()];
        for key in [plain, org, "other/key.json.gz"] {
            assert_eq!(shards.iter().filter(|s| s.owns(key)).count(), 1, "{key}");
        }
        assert_ne!(shard_of("111122223333", 2), shard_of("444455556666", 2));
        assert!(shards[0].owns("other/key.json.gz"));
        assert_eq!(Shard::parse(" 1 / 3 ").unwrap().to_string(), "1/3");
        for bad in ["2/2", "0/0", "1", "a/2", "0/17"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}

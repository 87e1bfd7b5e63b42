//! The Redis client of shared counting: one auto-reconnecting multiplexed connection
//! (`redis`'s tokio `ConnectionManager`) with short timeouts, and the Lua script that
//! counts a request's limits atomically (EVALSHA, loaded on first use). What happens when
//! Redis is away is `counting.rs`'s business, not this module's.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use policies::shared::{Count, Limit};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

/// The longest a connection attempt to Redis may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// The longest a request waits for Redis's answer before it counts locally instead.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(200);

/// Counts the request's limits in order, in one atomic step, on Redis's clock (TIME, in
/// microseconds: exact as Lua's doubles up to 2^53). For each key `i`, ARGV holds
/// `kind, a, b`: `g, interval_us, capacity` (GCRA: the key holds the theoretical arrival
/// time and expires when the bucket is full again) or `q, limit, period_end` (quota: the
/// key holds the period's count and expires at the period's end, unix seconds). The first
/// refusal stops the rest: what counted before it stays counted, as the local chain does.
///
/// Returns four integers per count looked at: `passed (1|0)`, `remaining`, then for GCRA
/// `reset_us, retry_us`, for a quota `used, 0`.
const COUNT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  local kind = ARGV[3 * i - 2]
  local a = tonumber(ARGV[3 * i - 1])
  local b = tonumber(ARGV[3 * i])
  local n = #out
  if kind == 'g' then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    local horizon = now + a * b
    local nxt = tat + a
    if nxt > horizon then
      out[n + 1] = 0; out[n + 2] = 0; out[n + 3] = tat - now; out[n + 4] = nxt - horizon
      return out
    end
    redis.call('SET', KEYS[i], string.format('%.0f', nxt), 'PX',
      string.format('%.0f', math.ceil((nxt - now) / 1000)))
    out[n + 1] = 1; out[n + 2] = math.floor((horizon - nxt) / a); out[n + 3] = nxt - now
    out[n + 4] = 0
  else
    local used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used >= a then
      out[n + 1] = 0; out[n + 2] = 0; out[n + 3] = used; out[n + 4] = 0
      return out
    end
    used = redis.call('INCR', KEYS[i])
    redis.call('EXPIREAT', KEYS[i], b)
    out[n + 1] = 1; out[n + 2] = a - used; out[n + 3] = used; out[n + 4] = 0
  end
end
return out
";

/// Redis's answer for one count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub passed: bool,
    pub remaining: u64,
    /// GCRA: microseconds until the bucket is full again. Quota: the period's count.
    pub reset_us_or_used: u64,
    /// GCRA refusal: microseconds until one more request is allowed.
    pub retry_us: u64,
}

/// A connection to the Redis named by `--redis`.
///
/// Two multiplexed connections, each driven by a task on the runtime that uses it: one for
/// the admin runtime (start-up check, the watch, usage reads, counts added after an
/// outage), and one made on the proxy's runtime by its first count. With a single
/// connection every count crossed from the proxy's threads to the admin runtime's task and
/// back, two thread wake-ups per request.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    proxy: Arc<OnceLock<ConnectionManager>>,
    client: redis::Client,
    config: ConnectionManagerConfig,
    script: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

impl RedisStore {
    /// A store for `url` (`redis://[user:pass@]host:port[/db]`, `rediss://` for TLS) that
    /// connects on first use and reconnects by itself. Must be called inside a tokio runtime
    /// (the connection's task runs there). `Err`: the URL is not a Redis URL.
    pub fn connect_lazy(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
            proxy: Arc::new(OnceLock::new()),
            client,
            config,
            script: Script::new(COUNT_SCRIPT),
        })
    }

    /// The proxy's connection, made on the calling (proxy) runtime the first time.
    fn proxy_conn(&self) -> Result<ConnectionManager, RedisError> {
        if let Some(conn) = self.proxy.get() {
            return Ok(conn.clone());
        }
        let conn =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
        // Two first counts at once each make one; the loser's is dropped unused.
        Ok(self.proxy.get_or_init(|| conn).clone())
    }

    /// Counts `counts` in order in one round trip; one [`Answer`] per count looked at (the
    /// last one is the refusal, if any).
    pub async fn count(&self, counts: &[Count]) -> Result<Vec<Answer>, RedisError> {
        let mut invocation = self.script.prepare_invoke();
        for count in counts {
            invocation.key(count.key.as_str());
            match count.limit {
                Limit::Rate(g) => invocation
                    .arg("g")
                    .arg((g.interval_nanos() / 1000).max(1))
                    .arg(g.capacity()),
                Limit::Quota { limit, period_end } => {
                    invocation.arg("q").arg(limit).arg(period_end)
                }
            };
        }
        let raw: Vec<i64> = invocation.invoke_async(&mut self.proxy_conn()?).await?;
        let clamp = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(raw
            .chunks_exact(4)
            .map(|c| Answer {
                passed: c[0] == 1,
                remaining: clamp(c[1]),
                reset_us_or_used: clamp(c[2]),
                retry_us: clamp(c[3]),
            })
            .collect())
    }

    /// Adds `n` to the count at `key`, expiring at `expire_at` (unix seconds): quota counts
    /// made while Redis was away.
    pub async fn add(&self, key: &str, n: u64, expire_at: u64) -> Result<(), RedisError> {
        redis::pipe()
            .atomic()
            .incr(key, n)
            .ignore()
            .expire_at(key, i64::try_from(expire_at).unwrap_or(i64::MAX))
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await
    }

    /// The count at `key` (0 when absent).
    pub async fn get(&self, key: &str) -> Result<u64, RedisError> {
        let v: Option<u64> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Whether Redis answers.
    /// Pings on both connections (the proxy's once it exists): Redis counts as back only
    /// when the proxy's connection has reconnected too, so the first count after an outage
    /// does not fail on a connection still broken.
    pub async fn ping(&self) -> Result<(), RedisError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        if let Some(proxy) = self.proxy.get() {
            redis::cmd("PING")
                .query_async::<()>(&mut proxy.clone())
                .await?;
        }
        Ok(())
    }
}

/// `url` without its password, for status pages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn redacted_hides_the_password_only() {
        assert_eq!(
            redacted("redis://app:s3cret@cache:6379/2"),
            "redis://app:***@cache:6379/2"
        );
        assert_eq!(
            redacted("rediss://:pw@cache:6380"),
            "rediss://:***@cache:6380"
        );
        assert_eq!(redacted("redis://cache:6379"), "redis://cache:6379");
    }
}

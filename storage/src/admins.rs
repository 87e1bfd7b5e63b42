//! Console users (argon2 PHC hashes, keyed by user name) and their sessions (keyed by a
//! hash of the session token, which the store never sees in plain).

use serde::{Deserialize, Serialize};

use crate::{Op, Store, StoreError};

/// A console session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    /// Unix seconds after which the session is refused.
    pub expires: u64,
}

impl Store {
    /// The stored password hash of `user`, if the user exists.
    pub fn admin_password_hash(&self, user: &str) -> Result<Option<String>, StoreError> {
        self.trees()?
            .admins
            .get(user.as_bytes())?
            .map(|v| {
                String::from_utf8(v.to_vec())
                    .map_err(|_| StoreError::Corrupt(format!("admin {user}: hash is not UTF-8")))
            })
            .transpose()
    }

    /// Creates `user` or changes its password; `hash` comes from [`crate::hash_password`].
    /// Every stored session of `user` ends: whoever logged in with the old password must
    /// log in again. Flushed before it returns.
    pub fn set_admin_password(&self, user: &str, hash: &str) -> Result<(), StoreError> {
        self.writing(Op::Write, |h| {
            h.admins.insert(user.as_bytes(), hash.as_bytes())?;
            h.admins.flush()?;
            Ok(())
        })?;
        self.delete_sessions_of(user)?;
        Ok(())
    }

    /// Forgets every session of `user` and flushes. Returns how many.
    pub fn delete_sessions_of(&self, user: &str) -> Result<usize, StoreError> {
        self.drop_sessions_where(|s| s.user == user)
    }

    /// Drops every session for which `doomed` holds, and every unreadable one (it could
    /// never be used), in one batch; flushes. Returns how many.
    fn drop_sessions_where(&self, doomed: impl Fn(&Session) -> bool) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut dropped = 0;
        for entry in self.trees()?.sessions.iter() {
            let (key, value) = entry?;
            if serde_json::from_slice::<Session>(&value).map_or(true, |s| doomed(&s)) {
                batch.remove(key);
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.writing(Op::Write, |h| {
                h.sessions.apply_batch(batch)?;
                h.sessions.flush()?;
                Ok(())
            })?;
        }
        Ok(dropped)
    }

    /// Whether any console user exists.
    pub fn has_admins(&self) -> Result<bool, StoreError> {
        Ok(!self.trees()?.admins.is_empty())
    }

    /// Stores a session under `token_hash`. Flushed before it returns.
    pub fn save_session(&self, token_hash: &str, session: &Session) -> Result<(), StoreError> {
        let value = serde_json::to_vec(session)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode session: {e}")))?;
        self.writing(Op::Write, |h| {
            h.sessions.insert(token_hash.as_bytes(), value)?;
            h.sessions.flush()?;
            Ok(())
        })?;
        Ok(())
    }

    /// The session stored under `token_hash`, if any and not expired at `now` (unix
    /// seconds). An expired session is removed.
    pub fn session(&self, token_hash: &str, now: u64) -> Result<Option<Session>, StoreError> {
        let Some(value) = self.trees()?.sessions.get(token_hash.as_bytes())? else {
            return Ok(None);
        };
        let session: Session = serde_json::from_slice(&value)
            .map_err(|e| StoreError::Corrupt(format!("session: {e}")))?;
        if session.expires <= now {
            self.delete_session(token_hash)?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Drops every session expired at `now` (unix seconds) and flushes. Returns how many.
    pub fn prune_sessions(&self, now: u64) -> Result<usize, StoreError> {
        self.drop_sessions_where(|s| s.expires <= now)
    }

    /// Forgets the session (logout). Missing sessions are fine.
    pub fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.writing(Op::Write, |h| {
            h.sessions.remove(token_hash.as_bytes())?;
            h.sessions.flush()?;
            Ok(())
        })?;
        Ok(())
    }
}

//! First start: make sure a console admin exists.

use rand::distributions::{Alphanumeric, DistString};

/// The console user created at first start.
pub const ADMIN_USER: &str = "admin";

/// Length of a generated admin password (alphanumeric: ~119 bits).
const GENERATED_PASSWORD_LEN: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("store: {0}")]
    Store(#[from] storage::StoreError),
    #[error(transparent)]
    Password(#[from] storage::PasswordError),
}

/// First start: if the store has no admin user, creates [`ADMIN_USER`] with `env_password`
/// or a random password, and returns `Some(generated)` so the caller prints it once.
/// With `env_password` set, (re)sets the password of [`ADMIN_USER`] and returns `None`;
/// a password different from the stored one ends every session of [`ADMIN_USER`] (the
/// same one keeps them: restarting with the variable logs nobody out).
/// `Err` means the store could not be read or written; nothing was changed then.
pub fn bootstrap_admin(
    store: &storage::Store,
    env_password: Option<String>,
) -> Result<Option<String>, BootstrapError> {
    if let Some(password) = env_password {
        let stored = store.admin_password_hash(ADMIN_USER)?;
        if !stored.is_some_and(|hash| storage::verify_password(&password, &hash)) {
            set_password(store, &password)?;
        }
        return Ok(None);
    }
    if store.has_admins()? {
        return Ok(None);
    }
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), GENERATED_PASSWORD_LEN);
    set_password(store, &password)?;
    Ok(Some(password))
}

fn set_password(store: &storage::Store, password: &str) -> Result<(), BootstrapError> {
    let hash = storage::hash_password(password)?;
    store.set_admin_password(ADMIN_USER, &hash)?;
    Ok(())
}

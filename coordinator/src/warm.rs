//! Warm pools: a function's `min_warm` keeps the versions its aliases point at loaded on that
//! many edge nodes, however long they idle, while every other app scales to zero. Every
//! replica renews the pins of its own nodes every [`RENEW_EVERY`] for [`PIN_FOR`], so a pin
//! ends by itself within [`PIN_FOR`] once the function no longer asks for it (its `min_warm`
//! back at 0, the alias moved, the replica gone).

use std::sync::Arc;
use std::time::Duration;

use nexus_store::Store;
use tokio::sync::Notify;

use crate::dispatch::Dispatch;
use crate::trigger::Resolver;

/// How often the pins are renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How long a pin lasts unless renewed: three renewals, so one missed renewal changes nothing.
pub const PIN_FOR: Duration = Duration::from_secs(30);
/// Aliases kept warm at most.
const MAX_ALIASES: u32 = 10_000;

/// Keeps the `min_warm` pools pinned.
#[derive(Clone)]
pub struct WarmPools {
    store: Arc<Store>,
    triggers: Arc<Resolver>,
    dispatch: Arc<dyn Dispatch>,
    now: Arc<Notify>,
}

impl WarmPools {
    /// Pools over `store`'s functions, resolved by `triggers`, pinned through `dispatch`.
    pub fn new(store: Arc<Store>, triggers: Arc<Resolver>, dispatch: Arc<dyn Dispatch>) -> Self {
        Self {
            store,
            triggers,
            dispatch,
            now: Arc::default(),
        }
    }

    /// Renews the pins now rather than at the next period (a function's `min_warm` changed).
    pub fn renew_now(&self) {
        self.now.notify_one();
    }

    /// Renews the pins every [`RENEW_EVERY`], and when asked, for as long as the runtime runs.
    pub fn start(&self) {
        let pools = self.clone();
        tokio::spawn(async move {
            loop {
                pools.renew().await;
                tokio::select! {
                    () = tokio::time::sleep(RENEW_EVERY) => {}
                    () = pools.now.notified() => {}
                }
            }
        });
    }

    async fn renew(&self) {
        let aliases = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.all_aliases(true, MAX_ALIASES).await }))
            .await;
        let aliases = match aliases {
            Ok(aliases) => aliases,
            Err(error) => {
                tracing::warn!(%error, "could not read the functions kept warm");
                return;
            }
        };
        for (project, function, alias) in aliases {
            let resolution = match self.triggers.resolve(&project, &function, &alias).await {
                Ok(Some(resolution)) => resolution,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, project, function, alias, "could not resolve an alias kept warm");
                    continue;
                }
            };
            for target in resolution.targets() {
                if let Err(error) = self.dispatch.keep_warm(Arc::clone(target), PIN_FOR).await {
                    tracing::warn!(%error, project, function, version = target.version, "could not keep a version warm");
                }
            }
        }
    }
}

//! What the relational capabilities share: the cache of connection pools by address (Postgres,
//! MySQL), and the stream that hands a WASIp3 guest rows as the database sends them (those two
//! and SQLite).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use wasmtime::StoreContextMut;
use wasmtime::component::{Destination, StreamProducer, StreamResult};

pub mod v2;

/// Connections one instance may hold open at once, per capability.
pub const MAX_CONNECTIONS: usize = 32;

/// Connections one pool keeps to one address. (Spin's pools hold 64; an edge node runs many
/// apps against one database, and each connection is a server process to Postgres.)
pub const POOL_SIZE: usize = 16;

/// Addresses with a pool at once; the least recently used pool is dropped beyond this, as
/// Spin's bounded cache does.
const MAX_POOLS: usize = 16;

/// Spin's `MAX_HOST_BUFFERED_BYTES`: the largest result set the host buffers for a guest.
pub const MAX_RESULT_BYTES: usize = 128 << 20;

/// Pools by the address a guest opened, least recently used first.
pub struct PoolCache<P> {
    pools: Mutex<VecDeque<(String, P)>>,
}

impl<P> Default for PoolCache<P> {
    fn default() -> Self {
        Self {
            pools: Mutex::new(VecDeque::new()),
        }
    }
}

impl<P: Clone> PoolCache<P> {
    /// The pool for `address`, made by `make` on first use. Making a pool opens nothing.
    pub fn get_or_make<E>(
        &self,
        address: &str,
        make: impl FnOnce() -> Result<P, E>,
    ) -> Result<P, E> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = pools.iter().position(|(key, _)| key == address) {
            let entry = pools.remove(index);
            if let Some(entry) = entry {
                let pool = entry.1.clone();
                pools.push_back(entry);
                return Ok(pool);
            }
        }
        let pool = make()?;
        if pools.len() >= MAX_POOLS {
            pools.pop_front();
        }
        pools.push_back((address.to_owned(), pool.clone()));
        Ok(pool)
    }
}

/// Hands the guest the items of a channel, one per read, converting each with `convert`.
pub struct ChannelProducer<T, I> {
    items: mpsc::Receiver<T>,
    convert: fn(T) -> I,
}

impl<T, I> ChannelProducer<T, I> {
    /// A producer of `items`, each converted with `convert`.
    pub fn new(items: mpsc::Receiver<T>, convert: fn(T) -> I) -> Self {
        Self { items, convert }
    }
}

impl<D, T: Send + 'static, I: Send + Sync + 'static> StreamProducer<D> for ChannelProducer<T, I> {
    type Item = I;
    type Buffer = Option<I>;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        mut store: StoreContextMut<'a, D>,
        mut destination: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        // A zero-length read asks whether an item is ready; a channel cannot tell without
        // taking one, so say yes and let the next read wait.
        if destination.remaining(&mut store) == Some(0) {
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        match self.items.poll_recv(context) {
            Poll::Ready(Some(item)) => {
                let converted = (self.convert)(item);
                destination.set_buffer(Some(converted));
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Poll::Ready(None) => Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_pool_per_address_and_drops_the_least_recently_used() {
        let cache = PoolCache::<usize>::default();
        let mut made = 0;
        for round in 0..2 {
            for address in 0..MAX_POOLS {
                let pool = cache
                    .get_or_make::<()>(&address.to_string(), || {
                        made += 1;
                        Ok(made)
                    })
                    .unwrap();
                assert_eq!(pool, address + 1, "round {round}");
            }
        }
        assert_eq!(made, MAX_POOLS);
        // Address 0 is now the least recently used: a new address evicts it.
        cache.get_or_make::<()>("new", || Ok(99)).unwrap();
        let remade = cache.get_or_make::<()>("0", || Ok(100)).unwrap();
        assert_eq!(remade, 100);
        let kept = cache.get_or_make::<()>("new", || Ok(0)).unwrap();
        assert_eq!(kept, 99);
    }

    #[test]
    fn a_failed_make_caches_nothing() {
        let cache = PoolCache::<usize>::default();
        assert_eq!(cache.get_or_make("a", || Err("bad")), Err("bad"));
        assert_eq!(cache.get_or_make::<()>("a", || Ok(1)), Ok(1));
    }
}

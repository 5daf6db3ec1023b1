//! Bindings for `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`: synchronous to the guest
//! (WASIp2 and WASIp3 guests alike), async on the host.

use wasmtime::component::Resource;

use super::{Bucket, Cas, Failure, SwapOutcome, WasiKeyValueView};

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/wasi-keyvalue",
    imports: { default: async | trappable },
    with: {
        "wasi:keyvalue/store.bucket": super::Bucket,
        "wasi:keyvalue/atomics.cas": super::Cas,
    },
});

use wasi::keyvalue::atomics::{self, CasError};
use wasi::keyvalue::batch;
use wasi::keyvalue::store::{self, Error, KeyResponse};

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::AccessDenied => Self::AccessDenied,
            Failure::Other(message) => Self::Other(message),
        }
    }
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl store::Host for WasiKeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        Ok(WasiKeyValueView::open(self, &identifier).map_err(Error::from))
    }
}

impl store::HostBucket for WasiKeyValueView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        Ok(self.bucket(&bucket)?.get(&key).await.map_err(Error::from))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        Ok(self
            .bucket(&bucket)?
            .set(&key, &value)
            .await
            .map_err(Error::from))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        Ok(self
            .bucket(&bucket)?
            .delete(&key)
            .await
            .map_err(Error::from))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        Ok(self
            .bucket(&bucket)?
            .exists(&key)
            .await
            .map_err(Error::from))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Outcome<KeyResponse> {
        let keys = self.bucket(&bucket)?.list_keys(cursor).await;
        Ok(keys
            .map(|keys| KeyResponse { keys, cursor: None })
            .map_err(Error::from))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.close_bucket(bucket)
    }
}

impl batch::Host for WasiKeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<(String, Option<Vec<u8>>)>> {
        let bucket = self.bucket(&bucket)?;
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        Ok(bucket.get_many(keys).await.map_err(Error::from))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.set_many(key_values).await.map_err(Error::from))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.delete_many(keys).await.map_err(Error::from))
    }
}

impl atomics::HostCas for WasiKeyValueView<'_> {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Resource<Cas>> {
        let bucket = self.bucket(&bucket)?;
        let cas = match bucket.observe(key).await {
            Ok(cas) => cas,
            Err(failure) => return Ok(Err(Error::from(failure))),
        };
        Ok(self.push_cas(cas).map_err(Error::from))
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Outcome<Option<Vec<u8>>> {
        let (bucket, key) = {
            let cas = self.table.get(&cas)?;
            (cas.bucket.clone(), cas.key.clone())
        };
        let value = match bucket.get(&key).await {
            Ok(value) => value,
            Err(failure) => return Ok(Err(Error::from(failure))),
        };
        self.table.get_mut(&cas)?.observed.clone_from(&value);
        Ok(Ok(value))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.take_cas(cas).map(|_| ())
    }
}

impl atomics::Host for WasiKeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Outcome<i64> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.increment(&key, delta).await.map_err(Error::from))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), CasError>> {
        let cas = self.take_cas(cas)?;
        let outcome = match cas.swap(&value).await {
            Ok(SwapOutcome::Swapped) => Ok(()),
            Ok(SwapOutcome::Conflict(fresh)) => match self.push_cas(fresh) {
                Ok(handle) => Err(CasError::CasFailed(handle)),
                Err(failure) => Err(CasError::StoreError(Error::from(failure))),
            },
            Err(failure) => Err(CasError::StoreError(Error::from(failure))),
        };
        Ok(outcome)
    }
}

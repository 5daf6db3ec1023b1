//! The invocation path: admission, a fresh instance per request, deadlines, and turning
//! every failure into an [`InvokeError`].
//!
//! Instances are never reused between requests, so no request can observe another's memory.
//! wasmtime's `ProxyHandler` runs each instance on its own task, which lets the response body
//! stream after the guest has produced the head.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;
use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut, Trap, UpdateDeadline};
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, ProxyHandler, ShouldAccept,
    TrapOrPanicError, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::caps::{self, Breaches, check_headers};
use crate::component::{Exports, TieredComponent};
use crate::config::Limits;
use crate::cpu_gate::{CpuGate, CpuRelease};
use crate::error::InvokeError;
use crate::host::key_value::AgentContext;
use crate::host::variables::ComponentSecrets;
use crate::output::LogSink;
use crate::state::{ComponentEnv, HostState, Invocation};

mod rc;

/// The body of a guest's response, streamed from the instance.
pub type GuestBody = WasiBody;
/// A response produced by a guest.
pub type GuestResponse = http::Response<GuestBody>;

/// How long a caller refused for capacity should wait before retrying.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a failed request waits for its instance to say why it failed.
const INSTANCE_REPORT_WAIT: Duration = Duration::from_millis(250);
/// How long after its deadline a stuck instance is torn down by the second line of defence.
const BACKSTOP_GRACE: Duration = Duration::from_millis(100);

/// Bounds the number of running instances, with a bounded queue in front.
pub struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicU32,
    max_waiting: u32,
    queue_timeout: Duration,
}

impl Admission {
    /// Admission for `limits.max_instances` running instances.
    pub fn new(limits: &Limits) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_instances as usize)),
            waiting: AtomicU32::new(0),
            max_waiting: limits.max_queued,
            queue_timeout: limits.queue_timeout,
        }
    }

    /// Waits for an instance slot, at most until `deadline` or the queue timeout.
    pub async fn admit(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, InvokeError> {
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(slot);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(InvokeError::Overloaded {
                retry_after: RETRY_AFTER,
            });
        }
        let give_up = deadline.min(Instant::now() + self.queue_timeout);
        let slot = tokio::time::timeout_at(give_up, Arc::clone(&self.slots).acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match slot {
            Ok(Ok(slot)) => Ok(slot),
            // Timed out, or the semaphore was closed because the runtime is shutting down.
            Ok(Err(_)) | Err(_) => Err(InvokeError::Overloaded {
                retry_after: RETRY_AFTER,
            }),
        }
    }

    /// Instance slots currently free.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Invocations currently waiting for a slot.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Serves requests for one component of a loaded app.
pub struct ComponentHandler {
    handler: ProxyHandler<Instantiator>,
    admission: Arc<Admission>,
    limits: Limits,
    secrets: Option<ComponentSecrets>,
}

/// What a request carries into its instance.
pub(crate) struct Admitted {
    deadline: Instant,
    agent: Option<AgentContext>,
    slot: OwnedSemaphorePermit,
    ended: oneshot::Sender<wasmtime::Result<()>>,
    /// The span the request arrived in, whatever task the instance runs on.
    span: tracing::Span,
    log_sink: Option<LogSink>,
    variables: Option<Arc<BTreeMap<String, String>>>,
}

impl ComponentHandler {
    pub(crate) fn new(
        component: Arc<TieredComponent>,
        env: Arc<ComponentEnv>,
        admission: Arc<Admission>,
        cpu_gate: Arc<CpuGate>,
        limits: Limits,
        secrets: Option<ComponentSecrets>,
    ) -> Self {
        let instantiator = Instantiator {
            component,
            env,
            cpu_gate,
            deadline: limits.deadline,
        };
        Self {
            handler: ProxyHandler::new(instantiator),
            admission,
            limits,
            secrets,
        }
    }

    /// The component id.
    pub fn component_id(&self) -> &str {
        &self.handler.state().env.id
    }

    /// Creates an instance and drops it without running a request; returns how long the
    /// store and instance took to create. For benchmarks and warm-up checks.
    pub async fn instantiate_only(&self) -> Result<Duration, InvokeError> {
        let started = std::time::Instant::now();
        let instance =
            self.handler.state().instantiate().await.map_err(|error| {
                InvokeError::Internal(format!("instantiation failed: {error:#}"))
            })?;
        let elapsed = started.elapsed();
        drop(instance);
        Ok(elapsed)
    }

    /// Runs `request` on a fresh instance and returns the guest's response.
    pub async fn handle<B>(&self, request: http::Request<B>) -> Result<GuestResponse, InvokeError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let deadline = Instant::now() + self.limits.deadline;
        let limit = self.limits.max_request_body_bytes;
        if declared_length(&request).is_some_and(|length| length > limit) {
            return Err(InvokeError::BodyTooLarge { limit });
        }
        // Every way in (ingress, trigger, node, cloud host) ends here, so the header caps hold
        // whatever server parsed the request.
        if let Err(cap) = check_headers(request.headers(), &self.limits) {
            self.breaches().record(cap);
            return Err(InvokeError::HeadersTooLarge {
                cap,
                limit: caps::value(&self.limits, cap),
            });
        }
        let agent = request.extensions().get::<AgentContext>().cloned();
        let log_sink = request.extensions().get::<LogSink>().cloned();
        // Before admission: a request whose secrets cannot be read holds no instance slot.
        let variables = match &self.secrets {
            Some(secrets) => Some(Arc::new(secrets.render().await?)),
            None => None,
        };
        let slot = self.admission.admit(deadline).await?;
        let exceeded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let request = request.map(|body| {
            LimitedBody {
                inner: body,
                remaining: limit,
                exceeded: Arc::clone(&exceeded),
            }
            .boxed_unsync()
        });
        let (ended, instance_ended) = oneshot::channel();
        let admitted = Admitted {
            deadline,
            agent,
            slot,
            ended,
            span: tracing::Span::current(),
            log_sink,
            variables,
        };
        // The handler enforces the deadline itself; this outer bound only guards against a
        // worker that never reports back.
        let served = async {
            let instantiator = self.handler.state();
            let prepared = instantiator.component.current();
            match prepared.exports() {
                Exports::Proxy(_) => self.handler.handle(admitted, request).await,
                Exports::Rc20231018(pre) => {
                    rc::handle(instantiator, prepared.engine(), pre, admitted, request).await
                }
            }
        };
        let outcome = tokio::time::timeout_at(deadline + 2 * BACKSTOP_GRACE, served).await;
        if exceeded.load(Ordering::Acquire) {
            return Err(InvokeError::BodyTooLarge { limit });
        }
        let failure = match outcome {
            Ok(Ok(response)) => match check_headers(response.headers(), &self.limits) {
                Ok(()) => return Ok(response),
                Err(cap) => InvokeError::GuestLimit {
                    cap,
                    limit: caps::value(&self.limits, cap),
                },
            },
            Ok(Err(error)) => {
                // The instance reports its own end right after the request hears of it.
                let instance_error =
                    match tokio::time::timeout(INSTANCE_REPORT_WAIT, instance_ended).await {
                        Ok(Ok(Err(instance_error))) => Some(instance_error),
                        _ => None,
                    };
                classify(&error, instance_error.as_ref(), deadline, &self.limits)
            }
            Err(_elapsed) => InvokeError::DeadlineExceeded {
                deadline: self.limits.deadline,
            },
        };
        if let InvokeError::GuestLimit { cap, .. } = &failure {
            self.breaches().record(*cap);
        }
        Err(failure)
    }

    fn breaches(&self) -> &Breaches {
        &self.handler.state().env.breaches
    }
}

fn declared_length<B>(request: &http::Request<B>) -> Option<u64> {
    request
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Maps what wasmtime's handler reported to the request (`error`) and, when it ended badly,
/// what the instance itself ended with, to the runtime's error, deciding whose fault it was.
fn classify(
    error: &wasmtime::Error,
    instance_error: Option<&wasmtime::Error>,
    deadline: Instant,
    limits: &Limits,
) -> InvokeError {
    let timed_out = InvokeError::DeadlineExceeded {
        deadline: limits.deadline,
    };
    if error.downcast_ref::<ExpirationError>().is_some() {
        return timed_out;
    }
    for candidate in [Some(error), instance_error].into_iter().flatten() {
        if let Some(cap) = caps::breached_by(candidate) {
            return InvokeError::GuestLimit {
                cap,
                limit: caps::value(limits, cap),
            };
        }
    }
    for candidate in [Some(error), instance_error].into_iter().flatten() {
        if let Some(trap) = candidate.downcast_ref::<Trap>() {
            if *trap == Trap::Interrupt {
                return timed_out;
            }
            return InvokeError::GuestTrap {
                message: format!("{candidate:?}"),
            };
        }
    }
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return InvokeError::Overloaded {
            retry_after: RETRY_AFTER,
        };
    }
    if let Some(failed) = error.downcast_ref::<InstantiationError<Admitted>>() {
        if failed.error.downcast_ref::<Trap>().is_some() {
            return InvokeError::GuestTrap {
                message: format!("{:?}", failed.error),
            };
        }
        if failed
            .error
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return InvokeError::Overloaded {
                retry_after: RETRY_AFTER,
            };
        }
        return InvokeError::Internal(format!("instantiation failed: {:?}", failed.error));
    }
    if Instant::now() >= deadline {
        return timed_out;
    }
    if error.downcast_ref::<TrapOrPanicError>().is_some() {
        return InvokeError::GuestTrap {
            message: error.to_string(),
        };
    }
    InvokeError::NoResponse {
        message: format!("{error:#}"),
    }
}

/// Creates instances for the handler: one store per instance, with limits and the epoch
/// policy installed before the guest runs a single instruction.
pub(crate) struct Instantiator {
    component: Arc<TieredComponent>,
    env: Arc<ComponentEnv>,
    cpu_gate: Arc<CpuGate>,
    deadline: Duration,
}

impl HandlerState for Instantiator {
    type StoreData = HostState;
    type WorkerExpiration = Backstop;
    type WorkerState = SingleUse;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Backstop, SingleUse>> {
        let prepared = self.component.current();
        let mut store = self.new_store(prepared.engine());
        let Exports::Proxy(pre) = prepared.exports() else {
            return Err(wasmtime::format_err!(
                "a release-candidate component is not run by wasmtime's handler"
            ));
        };
        let proxy = pre.instantiate_async(&mut store).await?;
        let cpu = store.data().cpu.release_handle();
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Backstop::new(self.deadline, cpu),
            state: SingleUse,
        })
    }
}

impl Instantiator {
    /// A store for a new instance, with its limits and the epoch policy installed.
    fn new_store(&self, engine: &Engine) -> Store<HostState> {
        let mut store = Store::new(engine, HostState::new(Arc::clone(&self.env)));
        store.limiter(|state| &mut state.limits);
        // Start functions run before a request is bound; they get one deadline's worth of time.
        let instantiate_deadline = Instant::now() + self.deadline;
        let gate = Arc::clone(&self.cpu_gate);
        store.epoch_deadline_callback(move |mut context| {
            epoch_policy(&mut context, &gate, instantiate_deadline)
        });
        store.set_epoch_deadline(1);
        store
    }
}

/// Every tick: past the deadline the guest is interrupted; otherwise it yields (see
/// [`crate::cpu_gate::CpuShare`]), so a guest in a busy loop shares the machine with everything else.
fn epoch_policy(
    context: &mut StoreContextMut<'_, HostState>,
    gate: &CpuGate,
    fallback: Instant,
) -> wasmtime::Result<UpdateDeadline> {
    let state = context.data_mut();
    let deadline = state.deadline().unwrap_or(fallback);
    if Instant::now() >= deadline {
        return Ok(UpdateDeadline::Interrupt);
    }
    Ok(UpdateDeadline::YieldCustom(1, state.cpu.next_slice(gate)))
}

/// Instances serve exactly one request.
pub(crate) struct SingleUse;

impl WorkerState for SingleUse {
    type StoreData = HostState;
    type RequestData = Admitted;

    fn should_accept_request(&self, _concurrent: usize, total: usize) -> ShouldAccept {
        if total == 0 {
            ShouldAccept::Yes
        } else {
            ShouldAccept::Never
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        admitted: Admitted,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        let deadline = admitted.deadline;
        store.data_mut().begin(Invocation {
            deadline,
            agent: admitted.agent,
            slot: admitted.slot,
            ended: admitted.ended,
            span: admitted.span,
            log_sink: admitted.log_sink,
            variables: admitted.variables,
        });
        Box::pin(tokio::time::sleep_until(deadline))
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        end_instance(store, result);
    }
}

/// Ends an instance that served (or failed to serve) a request.
fn end_instance(mut store: Store<HostState>, result: wasmtime::Result<()>) {
    let invocation = store.data_mut().end();
    let log = store.data().output.take();
    // Return the pooling slot before the admission slot, so an admitted request always
    // finds a free instance, and both before the requester hears how the instance ended.
    drop(store);
    match invocation
        .as_ref()
        .and_then(|invocation| invocation.log_sink.as_ref())
    {
        Some(sink) => sink.deliver(log),
        None => crate::output::write_to_process(&log),
    }
    if let Some(invocation) = invocation {
        drop(invocation.slot);
        let _ = invocation.ended.send(result);
    } else if let Err(error) = result {
        tracing::debug!(
            error = format!("{error:#}"),
            "instance ended with an error before serving a request"
        );
    }
}

/// Polled by wasmtime's worker each time the instance's future is pending, which is exactly
/// when the guest is not executing: it gives the instance's CPU slot up (a guest blocked on
/// I/O or on another guest must not hold it), and it is the second line of defence against a
/// guest that keeps its instance busy past the deadline (see `WorkerState::on_request_start`
/// in wasmtime).
pub(crate) struct Backstop {
    budget: Duration,
    timer: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
    cpu: CpuRelease,
}

impl Backstop {
    fn new(deadline: Duration, cpu: CpuRelease) -> Self {
        Self {
            budget: deadline + BACKSTOP_GRACE,
            timer: None,
            cpu,
        }
    }
}

impl WorkerExpiration for Backstop {
    fn poll(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        status: WorkerStatus,
        start: std::time::Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        this.cpu.release();
        match status {
            WorkerStatus::Idle => Poll::Ready(()),
            WorkerStatus::Requests | WorkerStatus::PostReturn => {
                let expires = Instant::from_std(start) + this.budget;
                let timer = match &mut this.timer {
                    Some((at, timer)) if *at == expires => timer,
                    slot => {
                        &mut slot
                            .insert((expires, Box::pin(tokio::time::sleep_until(expires))))
                            .1
                    }
                };
                timer.as_mut().poll(context)
            }
        }
    }
}

/// A request body that stops at the size limit and records that it did.
struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    exceeded: Arc<std::sync::atomic::AtomicBool>,
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => {
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(
                    error.to_string(),
                )))));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let length = data.len() as u64;
            if length > self.remaining {
                self.exceeded.store(true, Ordering::Release);
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                    None,
                ))));
            }
            self.remaining -= length;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

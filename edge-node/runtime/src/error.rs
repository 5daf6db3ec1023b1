//! The runtime's errors: what can go wrong loading an app, and what can go wrong invoking it.

use std::time::Duration;

use nexus_proto::Digest;

/// Result of loading or preparing components.
pub type Result<T, E = LoadError> = std::result::Result<T, E>;

/// Why an app or a component could not be loaded. Each of these is the deployer's to fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No bytes were supplied for a component's digest.
    #[error("component `{component}`: no artifact for {digest}")]
    MissingArtifact {
        /// The component id.
        component: String,
        /// The digest the record names.
        digest: Digest,
    },
    /// The artifact's bytes do not hash to the digest the record names.
    #[error("component `{component}`: artifact does not match {expected} (its digest is {actual})")]
    DigestMismatch {
        /// The component id.
        component: String,
        /// The digest the record names.
        expected: Digest,
        /// The digest of the bytes supplied.
        actual: Digest,
    },
    /// The bytes are not a valid WebAssembly component for this engine.
    #[error("component `{component}` failed to compile: {reason}")]
    Compile {
        /// The component id.
        component: String,
        /// The compiler's explanation.
        reason: String,
    },
    /// The component imports interfaces this runtime does not provide.
    #[error("component `{component}` imports unsupported interface(s): {}", imports.join(", "))]
    UnsupportedImports {
        /// The component id.
        component: String,
        /// Every unsupported import, by its full name (for example `fermyon:spin/llm@2.0.0`).
        imports: Vec<String>,
    },
    /// The component's imports have the right names but could not be linked.
    #[error("component `{component}` could not be linked: {reason}")]
    Link {
        /// The component id.
        component: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The component exports neither `wasi:http/incoming-handler@0.2.x` nor
    /// `wasi:http/handler@0.3.x`.
    #[error(
        "component `{component}` exports no HTTP handler (wasi:http/incoming-handler@0.2 or wasi:http/handler@0.3)"
    )]
    NotAnHttpComponent {
        /// The component id.
        component: String,
    },
    /// A required application variable has no value.
    #[error("variable `{name}` is required but has no value (set SPIN_VARIABLE_{})", name.to_uppercase())]
    MissingVariable {
        /// The variable's name.
        name: String,
    },
    /// A secret variable's store could not answer (fail closed).
    #[error(transparent)]
    SecretUnavailable(crate::host::variables::SecretUnavailable),
    /// A component variable refers to an application variable that does not exist.
    #[error("component `{component}`: variable `{variable}` refers to undefined `{reference}`")]
    UndefinedVariable {
        /// The component id.
        component: String,
        /// The component variable.
        variable: String,
        /// The application variable it names.
        reference: String,
    },
    /// An `allowed_outbound_hosts` entry is malformed.
    #[error("component `{component}`: invalid allowed_outbound_hosts entry `{entry}`: {reason}")]
    InvalidOutboundHost {
        /// The component id.
        component: String,
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The component's bytes are over [`crate::Limits::max_component_bytes`].
    #[error("component `{component}` is {size} bytes, over the {} cap of {limit} bytes", Cap::ComponentBytes.setting())]
    ComponentTooLarge {
        /// The component id.
        component: String,
        /// Its size in bytes.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Compiling and linking the component took longer than
    /// [`crate::Limits::compile_timeout`].
    #[error("component `{component}` did not compile within the {} cap of {limit:?}", Cap::CompileTime.setting())]
    CompileTimeout {
        /// The component id.
        component: String,
        /// The cap.
        limit: Duration,
    },
    /// A trigger names a component the app does not have.
    #[error("no component `{0}` in this app")]
    UnknownComponent(String),
    /// The engine could not be created with the requested settings.
    #[error("failed to create the wasmtime engine: {0}")]
    Engine(String),
}

/// One of the caps on what a component, an instance or an invocation may use; each is a field
/// of [`crate::Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cap {
    /// Bytes of one component (`max_component_bytes`).
    ComponentBytes,
    /// Time to compile one component (`compile_timeout`).
    CompileTime,
    /// Live host resources of one instance (`max_resources`).
    Resources,
    /// Bytes one host call moves (`max_host_call_bytes`).
    HostCallBytes,
    /// Outbound HTTP requests of one invocation (`max_outbound_requests`).
    OutboundRequests,
    /// Header fields of one request or response (`max_header_count`).
    HeaderCount,
    /// Bytes of one header section (`max_header_bytes`).
    HeaderBytes,
}

impl Cap {
    /// Every cap, in a fixed order.
    pub const ALL: [Cap; 7] = [
        Cap::ComponentBytes,
        Cap::CompileTime,
        Cap::Resources,
        Cap::HostCallBytes,
        Cap::OutboundRequests,
        Cap::HeaderCount,
        Cap::HeaderBytes,
    ];

    /// The name of the [`crate::Limits`] field that sets it.
    pub fn setting(self) -> &'static str {
        match self {
            Cap::ComponentBytes => "max_component_bytes",
            Cap::CompileTime => "compile_timeout",
            Cap::Resources => "max_resources",
            Cap::HostCallBytes => "max_host_call_bytes",
            Cap::OutboundRequests => "max_outbound_requests",
            Cap::HeaderCount => "max_header_count",
            Cap::HeaderBytes => "max_header_bytes",
        }
    }
}

impl std::fmt::Display for Cap {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.setting())
    }
}

/// Whose fault an invocation failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The guest misbehaved (trap, out of memory, too slow, no response).
    Guest,
    /// The caller sent something unacceptable.
    Caller,
    /// This node is out of capacity; the same request may succeed later or elsewhere.
    Capacity,
    /// A service the node depends on (a secrets store) could not answer.
    Upstream,
    /// A bug or an environment failure in the runtime.
    Internal,
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// Every instance slot is busy and the wait queue is full, or the wait took too long.
    #[error("node is at capacity; retry after {retry_after:?}")]
    Overloaded {
        /// When a retry is likely to find a free slot.
        retry_after: Duration,
    },
    /// The guest did not produce a response within its deadline.
    #[error("guest did not respond within {deadline:?}")]
    DeadlineExceeded {
        /// The deadline that passed.
        deadline: Duration,
    },
    /// The guest trapped (including running out of memory or stack).
    #[error("guest trapped: {message}")]
    GuestTrap {
        /// The trap, with the guest backtrace when available.
        message: String,
    },
    /// The guest returned without producing a response.
    #[error("guest returned without a response: {message}")]
    NoResponse {
        /// What the runtime saw.
        message: String,
    },
    /// The request body is larger than the limit.
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request's headers are over a cap (`max_header_count` or `max_header_bytes`).
    #[error("request headers exceed the {cap} cap of {limit}")]
    HeadersTooLarge {
        /// Which cap.
        cap: Cap,
        /// Its value.
        limit: u64,
    },
    /// The guest went over a cap: it held too many host resources, built a header section
    /// too large, or answered with too many or too large headers.
    #[error("guest exceeded the {cap} cap of {limit}")]
    GuestLimit {
        /// Which cap.
        cap: Cap,
        /// Its value.
        limit: u64,
    },
    /// A secret variable the component uses could not be read; the guest did not run.
    #[error(transparent)]
    SecretUnavailable(crate::host::variables::SecretUnavailable),
    /// The runtime failed for reasons that are not the guest's or the caller's.
    #[error("internal runtime error: {0}")]
    Internal(String),
}

impl InvokeError {
    /// Whose fault the failure is.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Overloaded { .. } => Fault::Capacity,
            Self::DeadlineExceeded { .. }
            | Self::GuestTrap { .. }
            | Self::NoResponse { .. }
            | Self::GuestLimit { .. } => Fault::Guest,
            Self::BodyTooLarge { .. } | Self::HeadersTooLarge { .. } => Fault::Caller,
            Self::SecretUnavailable(_) => Fault::Upstream,
            Self::Internal(_) => Fault::Internal,
        }
    }

    /// Whether running the same request again can succeed: true only when the guest never
    /// started, so a retry cannot repeat its side effects.
    pub fn retry_is_safe(&self) -> bool {
        matches!(self, Self::Overloaded { .. } | Self::SecretUnavailable(_))
    }
}

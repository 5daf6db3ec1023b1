//! Typed ids. They live here until the coordinator's domain moves them into `nexus-proto`.

use std::fmt;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) id. Random rather than time-ordered so that CockroachDB
            /// spreads inserts over ranges instead of appending to one.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}

id_type!(
    /// A user.
    UserId
);
id_type!(
    /// An edge node's outbox: what the node accepted on its own, waiting to be forwarded.
    OutboxId
);
id_type!(
    /// A session, which is also the id of its refresh-token family.
    SessionId
);
id_type!(
    /// A project.
    ProjectId
);
id_type!(
    /// A project API key.
    ApiKeyId
);
id_type!(
    /// A function (a name in a project).
    FunctionId
);
id_type!(
    /// One immutable version of a function.
    FunctionVersionId
);
id_type!(
    /// An agent.
    AgentId
);
id_type!(
    /// A process that holds leases (one coordinator run): fresh at every start.
    HolderId
);
id_type!(
    /// An asynchronous invocation.
    InvocationId
);
id_type!(
    /// A schedule.
    ScheduleId
);
id_type!(
    /// A progressive rollout of a version behind an alias.
    RolloutId
);

//! Bindings for `fermyon:spin/postgres@2.0.0` and `fermyon:spin/mysql@2.0.0`, generated
//! together so both use the one set of `fermyon:spin/rdbms-types@2.0.0` types.

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-rdbms-v2",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/postgres.connection": crate::host::outbound_pg::PgConnection,
        "fermyon:spin/mysql.connection": crate::host::outbound_mysql::MysqlConnection,
    },
});

pub use fermyon::spin::rdbms_types::{
    Column, DbDataType, DbValue, Error, ParameterValue, Row, RowSet,
};
pub use fermyon::spin::{mysql, postgres, rdbms_types};

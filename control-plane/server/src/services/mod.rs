//! The service layer beneath REST and GraphQL: one method per use case, each taking the caller.

pub mod access;
pub mod accounts;
pub mod datasets;
pub mod devices;
pub mod flows;
pub mod governance;
pub mod webhooks;

pub use access::AccessService;
pub use accounts::AccountService;
pub use datasets::DatasetService;

pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

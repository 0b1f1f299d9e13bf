//! The health and metrics endpoints, served by one tiny_http thread from `Stats`.
//!
//! Read-only: it renders the stats and never changes the pipeline.

//! # certgate-store
//!
//! The configuration model ([`model`]), its validation rules, transactions and
//! migrations, behind one store API with a SQLite backend (PostgreSQL next), plus a
//! change feed; and the on-disk trust store of a node ([`truststore`]).

pub mod model;

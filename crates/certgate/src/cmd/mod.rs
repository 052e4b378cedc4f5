//! One module per subcommand.

pub mod admin_cli;
pub mod dn_match;
pub mod quickstart;
pub mod serve;
pub mod store;

//! The edge where profiles meet the real AppArmor parser: compiling and checking
//! (`parser`), deciding attacker and need probes with the parser as the oracle (`probe`),
//! and comparing two profiles in human terms (`compare`).

pub mod compare;
pub mod parser;
pub mod probe;

pub use parser::{Parser, ParserError};

//! The edge where profiles meet the real AppArmor parser: compiling and checking
//! (`parser`), deciding attacker and need probes with the parser as the oracle (`probe`),
//! comparing two profiles in human terms (`compare`), and the bare catch-all rules of a
//! profile's text (`catch_all`).

pub mod catch_all;
pub mod compare;
pub mod parser;
pub mod probe;

pub use parser::{Parser, ParserError};

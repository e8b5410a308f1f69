//! Benchmark plumbing: a Lambda runtime-API emulator that runs real `bootstrap` binaries
//! unmodified, and a counting proxy in front of the AWS endpoint.

pub mod emulator;
pub mod problems;
pub mod proxy;

//! The `event-router` function: stream records → delivery jobs, and the no-show sweep.
